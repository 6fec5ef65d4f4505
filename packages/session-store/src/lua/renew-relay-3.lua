-- Extends a relay lease for its owner, and the relay's data with it (a relayed session's
-- events live as long as the session does). 1 when renewed, 0 when the lease is someone else's.
-- KEYS[1] lease  KEYS[2] events  KEYS[3] state
-- ARGV[1] owner  ARGV[2] lease ms  ARGV[3] data ttl ms
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
