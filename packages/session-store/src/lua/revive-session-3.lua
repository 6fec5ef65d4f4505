-- Points a session at a fresh upstream session after its own was lost (Redis lost the mapping,
-- the reaper released it, the server forgot it), with the checks that make revivals racing on
-- two replicas agree on one mapping: a tombstone (the client ended the session) refuses it, and
-- a mapping that names another upstream session than the one the caller saw wins, as in
-- remap-session. A record the reaper kept becomes the live session again, keeping what it holds.
-- KEYS[1] session hash  KEYS[2] tombstone  KEYS[3] sessions idle index
-- ARGV[1] upstream id the caller saw ("": none, the mapping was missing)  ARGV[2] new upstream id
-- ARGV[3] now (ms)  ARGV[4] session key TTL (ms)  ARGV[5] idle-index member
-- ARGV[6] protocol version  ARGV[7] when the session's token expires (ms; "" for none)
-- Returns { "ended" }, { "taken", the upstream id another revival recorded } or { "revived", ARGV[2] }.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return { 'ended' }
end
local current = redis.call('HGET', KEYS[1], 'upstream')
if current and current ~= ARGV[1] then
  return { 'taken', current }
end
redis.call('HSET', KEYS[1], 'upstream', ARGV[2], 'proto', ARGV[6], 'lastUsed', ARGV[3])
redis.call('HSETNX', KEYS[1], 'created', ARGV[3])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'exp', ARGV[7])
end
redis.call('HDEL', KEYS[1], 'released')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[5])
return { 'revived', ARGV[2] }
