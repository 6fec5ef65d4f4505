-- MAX_BACKENDS: reserves a slot for starting the user's backend, atomically across replicas.
-- Running backends are the routes idle index and the warm pool; starts in flight hold a
-- reservation that lapses on its own (a replica that died mid-start frees its slot).
-- KEYS[1] routes idle index  KEYS[2] starts in flight (score: lapse time, ms)
-- KEYS[3] ready spares (list)  KEYS[4] spare starts in flight
-- ARGV[1] user  ARGV[2] max backends  ARGV[3] now (ms)  ARGV[4] reservation TTL (ms)
-- Returns 1 when the user may run a backend, 0 when every slot is taken.
--- @include "includes/backendCount"
local count = backendCount(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
  return 1
end
if count >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
return 1
