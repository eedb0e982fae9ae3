-- admit.lua: decide one flash-sale purchase atomically; the clock is Redis TIME.
-- KEYS[1] window (hash: start_ms, end_ms, limit, price, state)
-- KEYS[2] stock  KEYS[3] buyers (user -> units held)  KEYS[4] stream
-- KEYS[5] user_req (user -> latest request id)  KEYS[6] stats (outcome -> count)
-- KEYS[7] this user's purchase-rate counter for the sale
-- ARGV[1] user_id  ARGV[2] request_id  ARGV[3] address_id  ARGV[4] payment method
-- ARGV[5] purchase calls allowed per rate window  ARGV[6] rate window in ms
-- ARGV[7] the sale's stock shards as the caller believes (these keys are the buyer's home shard)
-- returns {code, detail}: 0 queued (detail: stock left), 1 sold_out, 2 not_started (ms to go),
-- 3 ended, 4 cancelled, 5 already_purchased, 6 rate_limited (ms to wait), -1 no state (cold),
-- -2 wrong shard count (detail: the sale's), 7 this shard is dry: one unit of the user's limit
-- is reserved here and the caller must take a unit from another shard (take.lua) or give the
-- reservation back (unhold.lua); only a sale of more than one shard answers 7
-- With KEYS[8], the buyer's auth hash (a single Redis only: a script there may span slots), the
-- buyer check of admission.check_session comes first, in the same round trip:
-- ARGV[8] the cookie's session epoch  ARGV[9] the session's field in the hash
-- -3: the check needs MySQL (no hash, or the address is not among its `addrs`): the caller checks
-- as on a cluster, then calls again without KEYS[8]; -4: the session ended or the user is banned
if KEYS[8] then
  local a = redis.call('HMGET', KEYS[8], 'epoch', 'active', 'addrs', ARGV[9])
  if not a[1] then
    return {-3, 0}
  end
  local secs = tonumber(redis.call('TIME')[1])
  if tonumber(a[1]) ~= tonumber(ARGV[8]) or (tonumber(a[2]) or 0) == 0 or (tonumber(a[4] or '0') or 0) <= secs then
    return {-4, 0}
  end
  if not a[3] or not string.find(',' .. a[3] .. ',', ',' .. ARGV[3] .. ',', 1, true) then
    return {-3, 0}
  end
end
local w = redis.call('HMGET', KEYS[1], 'start_ms', 'end_ms', 'limit', 'price', 'state', 'shards')
if not w[1] then
  return {-1, 0}
end
local shards = tonumber(w[6] or '1')
if shards ~= tonumber(ARGV[7]) then
  return {-2, shards}
end
local calls = redis.call('INCR', KEYS[7])
if calls == 1 then
  redis.call('PEXPIRE', KEYS[7], ARGV[6])
end
if calls > tonumber(ARGV[5]) then
  redis.call('HINCRBY', KEYS[6], 'rate_limited', 1)
  return {6, redis.call('PTTL', KEYS[7])}
end
if w[5] == 'cancelled' then
  redis.call('HINCRBY', KEYS[6], 'ended', 1)
  return {4, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(w[1]) then
  redis.call('HINCRBY', KEYS[6], 'not_started', 1)
  return {2, tonumber(w[1]) - now}
end
if now >= tonumber(w[2]) then
  redis.call('HINCRBY', KEYS[6], 'ended', 1)
  return {3, 0}
end
local held = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if held >= tonumber(w[3]) then
  redis.call('HINCRBY', KEYS[6], 'already_purchased', 1)
  return {5, held}
end
local stock = tonumber(redis.call('GET', KEYS[2]) or '0')
if stock <= 0 then
  if shards > 1 then
    redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
    return {7, held + 1}
  end
  redis.call('HINCRBY', KEYS[6], 'sold_out', 1)
  return {1, 0}
end
redis.call('DECR', KEYS[2])
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
redis.call('XADD', KEYS[4], '*', 'r', ARGV[2], 'u', ARGV[1], 'a', ARGV[3], 'm', ARGV[4],
           'p', w[4], 't', tostring(now))
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[6], 'admitted', 1)
return {0, stock - 1}
