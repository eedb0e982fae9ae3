-- result.lua: a buyer's latest purchase on their home shard and its outcome, in one round trip
-- (the two reads depend on each other: the outcome is keyed by the request id).
-- KEYS[1] user_req (user id -> latest request id)  KEYS[2] results (request id -> outcome)
-- ARGV[1] user_id
-- returns false (no purchase on this shard) or {request id, outcome or false (still queued)}
local request_id = redis.call('HGET', KEYS[1], ARGV[1])
if not request_id then
  return false
end
return {request_id, redis.call('HGET', KEYS[2], request_id)}
