-- Warm pool refill: reserves the start of one spare, atomically across replicas, so ready plus
-- starting spares never pass the pool size and every backend stays under MAX_BACKENDS.
-- KEYS[1] routes idle index  KEYS[2] users' starts in flight  KEYS[3] ready spares (list)
-- KEYS[4] spare starts in flight (score: lapse time, ms)
-- ARGV[1] ticket  ARGV[2] pool size  ARGV[3] max backends  ARGV[4] now (ms)  ARGV[5] TTL (ms)
-- Returns 1 when the caller may start a spare under `ticket`, 0 when the pool or the cap is full.
--- @include "includes/backendCount"
local count = backendCount(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[4])
if redis.call('LLEN', KEYS[3]) + redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[2]) then
  return 0
end
if count >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[4], tonumber(ARGV[4]) + tonumber(ARGV[5]), ARGV[1])
return 1
