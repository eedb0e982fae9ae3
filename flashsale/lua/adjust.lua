-- adjust.lua: apply an admin's change to a warm sale: a new window and a stock delta
-- (total stock raised or lowered); stock never goes below zero here.
-- KEYS[1] window  KEYS[2] stock
-- ARGV[1] start_ms  ARGV[2] end_ms  ARGV[3] limit  ARGV[4] price  ARGV[5] state  ARGV[6] stock delta
-- returns {remaining stock, the delta applied (after the floor at zero)}, or {-1, 0} when the
-- state is missing (a rebuild will write it)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1, 0}
end
redis.call('HSET', KEYS[1], 'start_ms', ARGV[1], 'end_ms', ARGV[2], 'limit', ARGV[3],
           'price', ARGV[4], 'state', ARGV[5])
local delta = tonumber(ARGV[6])
local before = tonumber(redis.call('GET', KEYS[2]) or '0')
local stock = before
if delta ~= 0 then
  stock = math.max(0, before + delta)
  redis.call('SET', KEYS[2], stock)
end
return {stock, stock - before}
