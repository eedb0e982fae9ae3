-- Cache a user's auth state read from MySQL, unless a newer epoch is cached already (a login
-- that read the row just before a ban must not bring the old epoch back). One key: cluster-safe.
-- A hash without an epoch (lost or expired) also gets the user's live sessions, each only where
-- its field is absent (a session logged out meanwhile, "0", stays out); the caller reads them
-- from MySQL only when asked to (-1), so a warm hash costs no query.
-- KEYS[1] u:{id}:auth
-- ARGV: epoch, role, active (0/1), ttl seconds, with_sessions (0/1), then field, value pairs
--   -> 1 written, 0 kept (newer epoch), -1 nothing written: call again with the sessions
local cached = redis.call('HGET', KEYS[1], 'epoch')
if cached and tonumber(cached) > tonumber(ARGV[1]) then
  return 0
end
if not cached then
  if ARGV[5] ~= '1' then
    return -1
  end
  for i = 6, #ARGV, 2 do
    redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'role', ARGV[2], 'active', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
