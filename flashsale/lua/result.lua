-- result.lua: a buyer's latest purchase on their home shard and its outcome, in one round trip
-- (the two reads depend on each other: the outcome is keyed by the request id).
-- KEYS[1] user_req (user id -> latest request id)  KEYS[2] results (request id -> outcome)
-- ARGV[1] user_id
-- returns false (no purchase on this shard) or {request id, outcome or false (still queued)}
-- With KEYS[3], the buyer's auth hash (a single Redis only), the session is checked first, as in
-- admit.lua: ARGV[2] the cookie's epoch, ARGV[3] the session's field; -3: no hash (the caller
-- checks with MySQL, then calls again without KEYS[3]); -4: the session ended or the user is banned
if KEYS[3] then
  local a = redis.call('HMGET', KEYS[3], 'epoch', 'active', ARGV[3])
  if not a[1] then
    return -3
  end
  local secs = tonumber(redis.call('TIME')[1])
  if tonumber(a[1]) ~= tonumber(ARGV[2]) or (tonumber(a[2]) or 0) == 0 or (tonumber(a[3] or '0') or 0) <= secs then
    return -4
  end
end
local request_id = redis.call('HGET', KEYS[1], ARGV[1])
if not request_id then
  return false
end
return {request_id, redis.call('HGET', KEYS[2], request_id)}
