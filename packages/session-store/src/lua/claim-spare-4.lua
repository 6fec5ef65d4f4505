-- A user without a backend takes the oldest ready spare: one atomic step, so no two users ever
-- get the same one (nor its warm session). The spare's slot under MAX_BACKENDS passes to the
-- user as a start reservation (dropped when the route is written), and the binding container ->
-- user is kept, since the running container's labels still name the spare.
-- KEYS[1] ready spares (list)  KEYS[2] spare owners (hash)  KEYS[3] users' starts in flight
-- KEYS[4] spares' warm sessions (hash)
-- ARGV[1] user  ARGV[2] now (ms)  ARGV[3] reservation TTL (ms)
-- Returns { entry, warm session or false }, or false when the pool is empty.
local entry = redis.call('LPOP', KEYS[1])
if not entry then
  return false
end
local containerId = string.match(entry, '^(%S+)')
redis.call('HSET', KEYS[2], containerId, ARGV[1])
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
local warm = redis.call('HGET', KEYS[4], containerId)
redis.call('HDEL', KEYS[4], containerId)
return { entry, warm }
