-- fail.lua: end an admitted request that cannot become an order: give its unit back (once),
-- record the outcome, copy the entry to the dead-letter stream and acknowledge it.
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] released (set of request ids already given back)
-- KEYS[4] results  KEYS[5] dead-letter stream  KEYS[6] stream
-- ARGV[1] group  ARGV[2] entry id  ARGV[3] user_id  ARGV[4] request_id  ARGV[5] reason
-- ARGV[6] deliveries  ARGV[7] '0' when the buyer's slot is on another (their home) shard: the
-- caller gives it back there (unhold.lua); absent or '1': KEYS[2] holds it
-- returns 1 when this call gave the unit back, 0 when an earlier call had
local first = redis.call('SADD', KEYS[3], ARGV[4])
if first == 1 then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('INCR', KEYS[1])
    if ARGV[7] ~= '0' then
      local held = redis.call('HINCRBY', KEYS[2], ARGV[3], -1)
      if held <= 0 then
        redis.call('HDEL', KEYS[2], ARGV[3])
      end
    end
  end
  redis.call('XADD', KEYS[5], '*', 'entry', ARGV[2], 'r', ARGV[4], 'u', ARGV[3],
             'reason', ARGV[5], 'deliveries', ARGV[6])
end
redis.call('HSET', KEYS[4], ARGV[4], 'failed:' .. ARGV[5])
redis.call('XACK', KEYS[6], ARGV[1], ARGV[2])
return first
