-- unhold.lua: on a buyer's home shard, give back a slot of the per-user limit (a reservation
-- no donor could fill, or a dead-lettered request admitted on another shard), and record the
-- outcome.
-- KEYS[1] buyers  KEYS[2] results  KEYS[3] stats
-- ARGV[1] user_id  ARGV[2] units to give back (0 or 1)  ARGV[3] request id ('' for none)
-- ARGV[4] the request's result  ARGV[5] the stats outcome to count ('' for none)
-- returns the units the user still holds here
local held = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > 0 then
  held = redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2]))
  if held <= 0 then
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
end
if ARGV[5] ~= '' then
  redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
end
return held
