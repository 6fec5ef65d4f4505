-- Renews a session (when it still exists) and the user's route (when it is ready), with their
-- idle-index scores, in one round trip. Never resurrects what the reaper already claimed.
-- KEYS[1] session hash (unused when ARGV[3] == "")  KEYS[2] pooled-session pointer
-- KEYS[3] sessions idle index  KEYS[4] routes idle index  KEYS[5] route hash
-- ARGV[1] now (ms)  ARGV[2] session key TTL (ms)  ARGV[3] session id ("" for none)  ARGV[4] user id
local now = ARGV[1]
local sessionTouched = 0
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'lastUsed', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[3], now, ARGV[4] .. ':' .. ARGV[3])
  if redis.call('GET', KEYS[2]) == ARGV[3] then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
  sessionTouched = 1
end
local routeTouched = 0
if redis.call('HGET', KEYS[5], 'state') == 'ready' then
  redis.call('HSET', KEYS[5], 'lastUsed', now)
  redis.call('ZADD', KEYS[4], now, ARGV[4])
  routeTouched = 1
end
return { sessionTouched, routeTouched }
