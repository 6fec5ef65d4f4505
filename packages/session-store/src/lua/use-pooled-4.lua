-- The hot path of a session-less request: reads the user's pooled session and route and marks
-- both used (as touch-activity does), in one round trip.
-- KEYS[1] pooled-session pointer  KEYS[2] route hash  KEYS[3] sessions idle index  KEYS[4] routes idle index
-- ARGV[1] now (ms)  ARGV[2] session key TTL (ms)  ARGV[3] user id  ARGV[4] the user's key prefix
-- Returns { session id or "", session hash as a flat list, route hash as a flat list }.
local now = ARGV[1]
local id = redis.call('GET', KEYS[1])
local session = {}
if id then
  local key = ARGV[4] .. 's:' .. id
  session = redis.call('HGETALL', key)
  if #session > 0 then
    redis.call('HSET', key, 'lastUsed', now)
    redis.call('PEXPIRE', key, ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('ZADD', KEYS[3], now, ARGV[3] .. ':' .. id)
  else
    id = false
  end
end
local route = redis.call('HGETALL', KEYS[2])
if redis.call('HGET', KEYS[2], 'state') == 'ready' then
  redis.call('HSET', KEYS[2], 'lastUsed', now)
  redis.call('ZADD', KEYS[4], now, ARGV[3])
end
return { id or '', session, route }
