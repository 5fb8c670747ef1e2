-- sessionkit-redis: the sessions of one user, in one round trip.
--
-- KEYS[1]  the user's index set: store keys, 64 lowercase hex digits each
-- ARGV[1]  the index's digest, 64 lowercase hex digits
-- ARGV[2]  placement bits: 0 on one server, the number of group bits on a cluster
--
-- A member's session key is the index key with 'u:' and the digest replaced by the
-- member (see save.lua). Returns a flat array: a member, the HGETALL reply of its
-- session hash, the next member, its reply, and so on, for every member whose session
-- is still bound to this user. A member that is not a store key, whose session is gone
-- (deleted or expired: Redis has forgotten the key), is a forward or not a hash, or
-- that is bound to another user (or to none) is removed from the set (SREM). The
-- driver decodes the hashes and checks each binding strictly; this script only prunes
-- what is surely dead.
--
-- Redis Cluster: a member in another placement group than the index (a session bound
-- without a new id) lives in another slot, which a script cannot read: it is returned
-- with the integer 0 instead of a hash, for the driver to read and prune itself.

local index = KEYS[1]
local digest = ARGV[1]
local BITS = tonumber(ARGV[2])
local base = string.sub(index, 1, -67)
-- The reserved data field holding the user binding (sessionkit_core::USER_KEY).
local USER_FIELD = 'd:__sessionkit.user'
-- Lua's unpack has a stack limit; send large argument lists in batches.
local BATCH = 500

-- The binding's index digest ('k') of a hash, or '' (as in save.lua).
local function stored_user(key)
  local raw = redis.call('HGET', key, USER_FIELD)
  if not raw then
    return ''
  end
  local ok, binding = pcall(cjson.decode, raw)
  if not ok or type(binding) ~= 'table' then
    return ''
  end
  local k = binding['k']
  if type(k) ~= 'string' or #k ~= 64 or string.find(k, '[^0-9a-f]') then
    return ''
  end
  return k
end

-- The placement group of 64 hex digits (as in save.lua).
local function group(hex)
  if BITS == 0 then
    return 0
  end
  return math.floor(tonumber(string.sub(hex, 1, 4), 16) / 2 ^ (16 - BITS))
end

local found = {}
local dead = {}
for _, member in ipairs(redis.call('SMEMBERS', index)) do
  local live = false
  if #member == 64 and not string.find(member, '[^0-9a-f]') then
    if group(member) ~= group(digest) then
      live = true
      found[#found + 1] = member
      found[#found + 1] = 0
    else
      local key = base .. member
      live = redis.call('TYPE', key).ok == 'hash'
        and redis.call('HEXISTS', key, 'fwd') == 0
        and stored_user(key) == digest
      if live then
        found[#found + 1] = member
        found[#found + 1] = redis.call('HGETALL', key)
      end
    end
  end
  if not live then
    dead[#dead + 1] = member
    if #dead >= BATCH then
      redis.call('SREM', index, unpack(dead))
      dead = {}
    end
  end
end
if #dead > 0 then
  redis.call('SREM', index, unpack(dead))
end
return found
