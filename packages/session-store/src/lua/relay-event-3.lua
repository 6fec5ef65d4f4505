-- Appends one server-to-client event to a session's relay, only for the lease holder (a
-- replica that lost its lease must not write: its successor relays the same upstream stream),
-- then trims the oldest entries until the stream is within its entry and byte bounds (the
-- newest entry always stays), and ties both keys' lifetime to the session's.
-- KEYS[1] events (stream)  KEYS[2] state (hash)  KEYS[3] lease
-- ARGV[1] owner  ARGV[2] data  ARGV[3] upstream session  ARGV[4] upstream event id ('' if none)
-- ARGV[5] max entries  ARGV[6] max bytes  ARGV[7] ttl ms
-- Returns the new entry's id, or false when the caller does not hold the lease.
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return false end
local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[2])
local bytes = redis.call('HINCRBY', KEYS[2], 'bytes', string.len(ARGV[2]))
redis.call('HSET', KEYS[2], 'upstream', ARGV[3], 'upstreamEvent', ARGV[4])
local maxEntries = tonumber(ARGV[5])
local maxBytes = tonumber(ARGV[6])
local length = redis.call('XLEN', KEYS[1])
while length > 1 and (length > maxEntries or bytes > maxBytes) do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  redis.call('XDEL', KEYS[1], oldest[1])
  bytes = redis.call('HINCRBY', KEYS[2], 'bytes', -string.len(oldest[2][2]))
  length = length - 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return id
