-- rebuild.lua: write a sale's warm state, but only where none exists (Redis is the live
-- authority; a process that starts never overwrites it).
-- KEYS[1] window  KEYS[2] stock  KEYS[3] buyers
-- ARGV[1] start_ms  ARGV[2] end_ms  ARGV[3] limit  ARGV[4] price  ARGV[5] state
-- ARGV[6] remaining stock (of this shard)  ARGV[7] the sale's stock shards
-- ARGV[8..] user_id, units pairs (the users whose home is this shard)
-- returns 1 when written, 0 when state was already there
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('DEL', KEYS[3])
for i = 8, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
redis.call('SET', KEYS[2], ARGV[6])
redis.call('HSET', KEYS[1], 'start_ms', ARGV[1], 'end_ms', ARGV[2], 'limit', ARGV[3],
           'price', ARGV[4], 'state', ARGV[5], 'shards', ARGV[7])
return 1
