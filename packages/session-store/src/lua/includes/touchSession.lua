--[[
  Marks a live session used: renews its TTL and its idle-index score, and the pooled pointer's
  TTL when it names this session, so a pooled session in use keeps its pointer.
  The caller checks the session still exists: a touch must never resurrect what the reaper claimed.
]]
local function touchSession(sessionKey, pooledKey, sessionsIndex, sessionId, member, now, ttlMs)
  redis.call('HSET', sessionKey, 'lastUsed', now)
  redis.call('PEXPIRE', sessionKey, ttlMs)
  redis.call('ZADD', sessionsIndex, now, member)
  if redis.call('GET', pooledKey) == sessionId then
    redis.call('PEXPIRE', pooledKey, ttlMs)
  end
end
