-- Cache a user's auth state read from MySQL, unless a newer epoch is cached already (a login
-- that read the row just before a ban must not bring the old epoch back). One key: cluster-safe.
-- KEYS[1] u:{id}:auth   ARGV: epoch, role, active (0/1), ttl seconds   -> 1 written, 0 kept
local cached = redis.call('HGET', KEYS[1], 'epoch')
if cached and tonumber(cached) > tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'role', ARGV[2], 'active', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
