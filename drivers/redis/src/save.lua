-- sessionkit-redis: every write to a session hash, in one atomic round trip.
--
-- KEYS[1]  the session hash
-- ARGV[1]  mode: 'create', 'patch' or 'touch'
-- ARGV[2]  expires_at, milliseconds since the Unix epoch (PEXPIREAT)
-- ARGV[3]  last seen, milliseconds
-- create:  ARGV[4] created, then field/value pairs ('d:<key>', JSON)
-- patch:   ARGV[4] '1' to clear, ARGV[5] = n removed fields, n field names,
--          then field/value pairs to set
--
-- Returns 1 when applied; 0 for a create over an existing key (duplicate) or a
-- patch/touch of a key that is missing, expired or not a hash (gone). Nothing is
-- written in the 0 cases.

local key = KEYS[1]
local mode = ARGV[1]
-- Lua's unpack has a stack limit; send large argument lists in batches.
local BATCH = 500

local function hset_pairs(first)
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

local function hdel_all(fields)
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

if mode == 'create' then
  if redis.call('EXISTS', key) == 1 then
    return 0
  end
  redis.call('HSET', key, 'v', '1', 'created', ARGV[4], 'seen', ARGV[3])
  hset_pairs(5)
  redis.call('PEXPIREAT', key, ARGV[2])
  return 1
end

if redis.call('TYPE', key).ok ~= 'hash' then
  return 0
end

if mode == 'touch' then
  redis.call('HSET', key, 'seen', ARGV[3])
  redis.call('PEXPIREAT', key, ARGV[2])
  return 1
end

if mode ~= 'patch' then
  return redis.error_reply('sessionkit: unknown mode')
end

if ARGV[4] == '1' then
  local data = {}
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) == 'd:' then
      data[#data + 1] = field
    end
  end
  hdel_all(data)
end
local removed = tonumber(ARGV[5])
local fields = {}
for i = 6, 5 + removed do
  fields[#fields + 1] = ARGV[i]
end
hdel_all(fields)
redis.call('HSET', key, 'seen', ARGV[3])
hset_pairs(6 + removed)
redis.call('PEXPIREAT', key, ARGV[2])
return 1
