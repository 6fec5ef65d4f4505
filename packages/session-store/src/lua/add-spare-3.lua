-- A spare is ready: its start reservation becomes a pool entry, unless the pool is full (a start
-- that outlived its reservation while another replica refilled): then the caller removes it.
-- KEYS[1] ready spares (list)  KEYS[2] spare starts in flight  KEYS[3] spares' warm sessions (hash)
-- ARGV[1] ticket  ARGV[2] entry ("<container id> <created ms> <endpoint>")  ARGV[3] pool size
-- ARGV[4] its warm session ("<session id> <protocol version>"; "" for none)
-- Returns 1 when pooled, 0 when the caller must remove the container.
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[2])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], string.match(ARGV[2], '^(%S+)'), ARGV[4])
end
return 1
