-- take.lua: admit a purchase on a donor shard of a sale split over shards, for a buyer whose
-- home shard is dry and holds their reserved slot (admit.lua answered 7). Only stock is
-- decided here: the per-user limit was kept on the home shard.
-- KEYS[1] window  KEYS[2] stock  KEYS[3] stream  KEYS[4] stats (all of the donor shard)
-- ARGV[1] user_id  ARGV[2] request_id  ARGV[3] address_id  ARGV[4] payment method
-- ARGV[5] the buyer's home shard
-- returns {code, detail}: 0 queued (detail: stock left here), 1 this shard is dry too,
-- 3 ended, 4 cancelled, -1 no state (cold)
local w = redis.call('HMGET', KEYS[1], 'end_ms', 'price', 'state')
if not w[1] then
  return {-1, 0}
end
if w[3] == 'cancelled' then
  return {4, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(w[1]) then
  return {3, 0}
end
local stock = tonumber(redis.call('GET', KEYS[2]) or '0')
if stock <= 0 then
  return {1, 0}
end
redis.call('DECR', KEYS[2])
redis.call('XADD', KEYS[3], '*', 'r', ARGV[2], 'u', ARGV[1], 'a', ARGV[3], 'm', ARGV[4],
           'p', w[2], 't', tostring(now), 'h', ARGV[5])
redis.call('HINCRBY', KEYS[4], 'admitted', 1)
return {0, stock - 1}
