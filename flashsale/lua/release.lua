-- release.lua: give a cancelled or failed order's units back to its sale, once per caller.
-- KEYS[1] stock  KEYS[2] buyers (user -> units held)
-- ARGV[1] user_id  ARGV[2] units
-- returns the remaining stock after the release, or -1 when the sale's state is not in Redis
-- (then nothing is done: a rebuild from MySQL counts the release already)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local units = tonumber(ARGV[2])
local held = redis.call('HINCRBY', KEYS[2], ARGV[1], -units)
if held <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return redis.call('INCRBY', KEYS[1], units)
