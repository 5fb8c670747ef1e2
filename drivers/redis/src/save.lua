-- sessionkit-redis: every write to a session hash, in one atomic round trip.
--
-- KEYS[1]  the session hash
-- ARGV[1]  mode: 'create', 'patch', 'touch' or 'rotate'
-- ARGV[2]  expires_at, milliseconds since the Unix epoch (PEXPIREAT)
-- ARGV[3]  last seen, milliseconds
-- create:  ARGV[4] created, then field/value pairs ('d:<key>', JSON)
-- patch:   ARGV[4] '1' to clear, ARGV[5] = n removed fields, n field names,
--          then field/value pairs to set
-- rotate:  KEYS[2] the new session hash; ARGV[4] grace_until, milliseconds (the
--          forward's PEXPIREAT), ARGV[5] the forward's 'fwd' value, then the patch
--          arguments from ARGV[6] on, laid out as patch's from ARGV[4] on
--
-- A forward (left under KEYS[1] by 'rotate') is a hash whose only field is 'fwd'.
--
-- Returns 1 when applied; 0 for a create over an existing key (duplicate), a
-- patch/touch/rotate of a key that is missing, expired, a forward or not a hash
-- (gone). Nothing is written in the 0 cases. 'rotate' returns 2 (nothing written)
-- when KEYS[2] exists already.
--
-- Redis Cluster: 'rotate' writes two keys, declared in KEYS as scripts must, but
-- they hash to different slots (no hash tag joins them), so a cluster refuses it
-- (CROSSSLOT). This driver talks to one server; cluster support will need a hash tag
-- per session or a rotate in two steps.

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

local key = KEYS[1]

if mode == 'create' then
  if redis.call('EXISTS', key) == 1 then
    return 0
  end
  redis.call('HSET', key, 'v', '1', 'created', ARGV[4], 'seen', ARGV[3])
  hset_pairs(key, 5)
  redis.call('PEXPIREAT', key, ARGV[2])
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
  return 1
end

if mode == 'rotate' then
  local to = KEYS[2]
  if redis.call('EXISTS', to) == 1 then
    return 2
  end
  -- The record as stored now moves, then gets the patch: changes other requests
  -- made since this one loaded are kept.
  redis.call('RENAME', key, to)
  apply_patch(to, 6)
  -- An end of the grace window already past deletes the forward at once.
  redis.call('HSET', key, 'fwd', ARGV[5])
  redis.call('PEXPIREAT', key, ARGV[4])
  return 1
end

return redis.error_reply('sessionkit: unknown mode')
