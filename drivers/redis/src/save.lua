-- sessionkit-redis: every write to a session hash, in one atomic round trip.
--
-- KEYS[1]  the session hash
-- ARGV[1]  mode: 'create', 'patch', 'touch' or 'rotate'
-- ARGV[2]  expires_at, milliseconds since the Unix epoch (PEXPIREAT)
-- ARGV[3]  last seen, milliseconds
-- create:  ARGV[4] created, then field/value pairs ('d:<key>', JSON)
--          KEYS[2] (optional) the index set of the user the record is bound to
-- patch:   ARGV[4] '1' to clear, ARGV[5] = n removed fields, n field names,
--          then field/value pairs to set
--          KEYS[2] (optional) the index set of the user the patch binds the record to
-- rotate:  KEYS[2] the new session hash; ARGV[4] grace_until, milliseconds (the
--          forward's PEXPIREAT), ARGV[5] the forward's 'fwd' value, ARGV[6] '1' when
--          the patch leaves the user binding as stored (check it, see below) or '0'
--          when the patch sets or removes it, then the patch arguments from ARGV[7]
--          on, laid out as patch's from ARGV[4] on
--          KEYS[3] (optional) the index set of the user the moved record is bound to
--
-- A forward (left under KEYS[1] by 'rotate') is a hash whose only field is 'fwd'.
--
-- User indexes: a user's index is a set of store keys (64 lowercase hex digits, the
-- last 64 characters of a session's Redis key). The driver computes which index a
-- write belongs to from the record or patch it sends and names it in KEYS; the script
-- adds the session to it (SADD) and moves the set's expiry to at least the session's.
-- A rotation whose patch leaves the binding alone binds the moved record to whoever
-- the stored record is bound to, which the driver only knows from its own (possibly
-- stale) view: with ARGV[6] = '1' the script compares the stored binding's index
-- digest ('k') with the one of KEYS[3] (none: no KEYS[3]) and, when they differ,
-- writes nothing and returns the stored digest ('' for no binding) for the driver to
-- retry with. Deletes and expiries need no index work: listing (list.lua) checks
-- every entry and drops the dead ones.
--
-- Returns 1 when applied; 0 for a create over an existing key (duplicate), a
-- patch/touch/rotate of a key that is missing, expired, a forward or not a hash
-- (gone). Nothing is written in the 0 cases. 'rotate' returns 2 (nothing written)
-- when KEYS[2] exists already, and a string (nothing written) when the user check
-- fails.
--
-- Redis Cluster: 'rotate' writes two keys, declared in KEYS as scripts must, but
-- they hash to different slots (no hash tag joins them), so a cluster refuses it
-- (CROSSSLOT). The same holds for a session and its user's index set. This driver
-- talks to one server; cluster support will need hash tags (a session and its
-- user's index in one slot) or writes in several steps.

local mode = ARGV[1]
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
-- flag), as documented for 'patch' from ARGV[4] on.
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

-- Adds the session whose Redis key is `session` to the index set `index` (if any),
-- and moves the set's expiry to at least `expires_at` (milliseconds, as ARGV[2]).
local function index_session(index, session, expires_at)
  if not index then
    return
  end
  redis.call('SADD', index, string.sub(session, -64))
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

local key = KEYS[1]

if mode == 'create' then
  if redis.call('EXISTS', key) == 1 then
    return 0
  end
  redis.call('HSET', key, 'v', '1', 'created', ARGV[4], 'seen', ARGV[3])
  hset_pairs(key, 5)
  redis.call('PEXPIREAT', key, ARGV[2])
  index_session(KEYS[2], key, ARGV[2])
  return 1
end

if not is_record(key) then
  return 0
end

if mode == 'touch' then
  redis.call('HSET', key, 'seen', ARGV[3])
  redis.call('PEXPIREAT', key, ARGV[2])
  return 1
end

if mode == 'patch' then
  apply_patch(key, 4)
  index_session(KEYS[2], key, ARGV[2])
  return 1
end

if mode == 'rotate' then
  local to = KEYS[2]
  if redis.call('EXISTS', to) == 1 then
    return 2
  end
  local index = KEYS[3]
  if ARGV[6] == '1' then
    local expected = ''
    if index then
      expected = string.sub(index, -64)
    end
    local stored = stored_user(key)
    if stored ~= expected then
      return stored
    end
  end
  -- The record as stored now moves, then gets the patch: changes other requests
  -- made since this one loaded are kept.
  redis.call('RENAME', key, to)
  apply_patch(to, 7)
  -- An end of the grace window already past deletes the forward at once.
  redis.call('HSET', key, 'fwd', ARGV[5])
  redis.call('PEXPIREAT', key, ARGV[4])
  if index then
    -- The old key holds a forward now, never again a session of this user.
    redis.call('SREM', index, string.sub(key, -64))
    index_session(index, to, ARGV[2])
  end
  return 1
end

return redis.error_reply('sessionkit: unknown mode')
