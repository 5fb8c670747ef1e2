-- sessionkit-redis: every write to a session hash, in one atomic round trip.
--
-- KEYS[1]  the session hash ('index' mode: the user's index set)
-- ARGV[1]  mode: 'create', 'patch', 'touch', 'rotate', 'update' or 'index'
-- ARGV[2]  expires_at, milliseconds since the Unix epoch (PEXPIREAT)
-- ARGV[3]  last seen, milliseconds ('index' mode: the member, a store key)
-- ARGV[4]  placement bits: 0 on one server, the number of group bits on a cluster
-- create:  ARGV[5] created, ARGV[6] a nonce of this create (hex), then field/value
--          pairs ('d:<key>', JSON)
-- patch:   ARGV[5] '1' to clear, ARGV[6] = n removed fields, n field names,
--          then field/value pairs to set
-- rotate:  KEYS[2] the new session hash; ARGV[5] grace_until, milliseconds (the
--          forward's PEXPIREAT), ARGV[6] the forward's 'fwd' value, then the patch
--          arguments from ARGV[7] on, laid out as patch's from ARGV[5] on
-- update:  a compare-and-set of one field: ARGV[5] the field ('d:<key>'), ARGV[6] '1'
--          when the field must hold ARGV[7] (JSON text) or '0' when it must be absent,
--          ARGV[8] '1' to set it to ARGV[9] or '0' to remove it
-- index:   adds ARGV[3] to the set KEYS[1], whose expiry becomes at least ARGV[2]
--
-- A forward (left under KEYS[1] by 'rotate') is a hash whose only field is 'fwd'.
--
-- User indexes. A user's index is a set of store keys (64 lowercase hex digits, the
-- last 64 characters of a session's Redis key) whose Redis key is the session key's
-- with the store key replaced by 'u:' and the user's index digest (the binding's 'k'
-- field). After every write that leaves a record, the script reads the record's
-- binding as now stored and adds the session to that user's index, whose expiry
-- becomes at least the session's: an index lives as long as its longest-lived session,
-- and a binding changed by a concurrent request is indexed as it is, not as the driver
-- saw it. Deletes and expiries need no index work: listing (list.lua) checks every
-- entry and drops the dead ones.
--
-- Redis Cluster. All keys of a call share a hash slot: a session key holds the hash
-- tag '{<namespace>.<group>}', the group being the top ARGV[4] bits of its store key,
-- and ids are drawn so that a renewal's new key has the old key's group and a bound
-- session the group of its user's index. When a binding's index is in another group
-- anyway (a session bound without a new id), the script cannot touch it (it is in
-- another slot): it returns the binding's digest instead of 1, and the driver adds
-- the session to that index with an 'index' call. On one server every index is local.
--
-- A create or rotate run a second time (a client re-sending after a lost answer)
-- recognises its first run and answers 1 again; an update must not run twice, and the
-- driver never re-sends it.
--
-- Returns 1 when applied (or the digest of an index to update, as above); 0 for a
-- create over an existing key (duplicate), a patch/touch/rotate of a key that is
-- missing, expired, a forward or not a hash (gone). Nothing is written in the 0
-- cases. 'rotate' returns 2 (nothing written) when KEYS[2] exists already. 'update'
-- returns {'conflict', current text} or {'conflict'} (absent) when the field holds
-- something else (nothing written).

local mode = ARGV[1]
local BITS = tonumber(ARGV[4])
-- Lua's unpack has a stack limit; send large argument lists in batches.
local BATCH = 500

local function hset_pairs(key, first)
  local batch = {}
  for i = first, #ARGV, 2 do
    batch[#batch + 1] = ARGV[i]
    batch[#batch + 1] = ARGV[i + 1]
    if #batch >= 2 * BATCH then
      redis.call('HSET', key, unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then
    redis.call('HSET', key, unpack(batch))
  end
end

local function hdel_all(key, fields)
  local batch = {}
  for _, field in ipairs(fields) do
    batch[#batch + 1] = field
    if #batch >= BATCH then
      redis.call('HDEL', key, unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then
    redis.call('HDEL', key, unpack(batch))
  end
end

-- Whether `key` holds a record: a hash that is not a forward.
local function is_record(key)
  return redis.call('TYPE', key).ok == 'hash' and redis.call('HEXISTS', key, 'fwd') == 0
end

-- Applies a patch to the hash `key`; its arguments start at ARGV[first] (the clear
-- flag), as documented for 'patch' from ARGV[5] on.
local function apply_patch(key, first)
  if ARGV[first] == '1' then
    local data = {}
    for _, field in ipairs(redis.call('HKEYS', key)) do
      if string.sub(field, 1, 2) == 'd:' then
        data[#data + 1] = field
      end
    end
    hdel_all(key, data)
  end
  local removed = tonumber(ARGV[first + 1])
  local fields = {}
  for i = first + 2, first + 1 + removed do
    fields[#fields + 1] = ARGV[i]
  end
  hdel_all(key, fields)
  redis.call('HSET', key, 'seen', ARGV[3])
  hset_pairs(key, first + 2 + removed)
  redis.call('PEXPIREAT', key, ARGV[2])
end

-- The reserved data field holding the user binding (sessionkit_core::USER_KEY).
local USER_FIELD = 'd:__sessionkit.user'

-- The index digest of the user the hash `key` is bound to: the binding's 'k', 64
-- lowercase hex digits, or '' (no binding, or one that does not parse). The driver
-- checks bindings strictly when it lists; this only picks the index.
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

-- The placement group of 64 hex digits: their top BITS bits (0 on one server).
local function group(hex)
  if BITS == 0 then
    return 0
  end
  return math.floor(tonumber(string.sub(hex, 1, 4), 16) / 2 ^ (16 - BITS))
end

-- Adds the member `member` to the index set `index` and moves the set's expiry to at
-- least `expires_at` (milliseconds, as ARGV[2]).
local function add_to_index(index, member, expires_at)
  redis.call('SADD', index, member)
  local ttl = redis.call('PTTL', index)
  if ttl >= 0 then
    local time = redis.call('TIME')
    local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    if now + ttl >= tonumber(expires_at) then
      return
    end
  end
  redis.call('PEXPIREAT', index, expires_at)
end

-- Indexes the record under `key` by its stored binding (see the header). Returns 1,
-- or the binding's digest when its index is in another slot.
local function index_record(key)
  local k = stored_user(key)
  if k == '' then
    return 1
  end
  local member = string.sub(key, -64)
  if group(k) ~= group(member) then
    return k
  end
  add_to_index(string.sub(key, 1, -65) .. 'u:' .. k, member, ARGV[2])
  return 1
end

local key = KEYS[1]

if mode == 'index' then
  add_to_index(key, ARGV[3], ARGV[2])
  return 1
end

if mode == 'create' then
  if redis.call('EXISTS', key) == 1 then
    -- This very create, sent again by a client that lost the first answer, finds the
    -- marker its first run left: done already. Any other create of the key is refused.
    if redis.call('EXISTS', string.sub(key, 1, -65) .. 'op:' .. ARGV[6]) == 1 then
      return 1
    end
    return 0
  end
  redis.call('HSET', key, 'v', '1', 'created', ARGV[5], 'seen', ARGV[3])
  hset_pairs(key, 7)
  -- The marker of this create, for a re-sent copy of it; gone after a minute.
  redis.call('SET', string.sub(key, 1, -65) .. 'op:' .. ARGV[6], '1', 'PX', 60000)
  redis.call('PEXPIREAT', key, ARGV[2])
  return index_record(key)
end

if not is_record(key) then
  -- A rotation sent again after its answer was lost finds its own forward (to a key
  -- drawn for this rotation alone): done already.
  if mode == 'rotate' and redis.call('TYPE', key).ok == 'hash'
      and redis.call('HGET', key, 'fwd') == ARGV[6] then
    return 1
  end
  return 0
end

if mode == 'touch' then
  redis.call('HSET', key, 'seen', ARGV[3])
  redis.call('PEXPIREAT', key, ARGV[2])
  return index_record(key)
end

if mode == 'patch' then
  apply_patch(key, 5)
  return index_record(key)
end

if mode == 'update' then
  local field = ARGV[5]
  local current = redis.call('HGET', key, field)
  local matches
  if ARGV[6] == '1' then
    matches = current == ARGV[7]
  else
    matches = not current
  end
  if not matches then
    if current then
      return {'conflict', current}
    end
    return {'conflict'}
  end
  if ARGV[8] == '1' then
    redis.call('HSET', key, field, ARGV[9])
  else
    redis.call('HDEL', key, field)
  end
  redis.call('HSET', key, 'seen', ARGV[3])
  redis.call('PEXPIREAT', key, ARGV[2])
  return index_record(key)
end

if mode == 'rotate' then
  local to = KEYS[2]
  if redis.call('EXISTS', to) == 1 then
    return 2
  end
  -- The record as stored now moves, then gets the patch: changes other requests
  -- made since this one loaded are kept.
  redis.call('RENAME', key, to)
  apply_patch(to, 7)
  -- An end of the grace window already past deletes the forward at once.
  redis.call('HSET', key, 'fwd', ARGV[6])
  redis.call('PEXPIREAT', key, ARGV[5])
  -- The old key holds a forward now: its index entry goes (listing would drop it).
  local k = stored_user(to)
  if k ~= '' and group(k) == group(string.sub(key, -64)) then
    redis.call('SREM', string.sub(key, 1, -65) .. 'u:' .. k, string.sub(key, -64))
  end
  return index_record(to)
end

return redis.error_reply('sessionkit: unknown mode')
