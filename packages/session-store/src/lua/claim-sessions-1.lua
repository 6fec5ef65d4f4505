-- Claims up to ARGV[2] sessions idle since before ARGV[1] and releases them, atomically: a
-- touch that lands first moves the score past the cutoff and the session is not claimed; a
-- touch that lands after finds the session gone and does not bring it back. A client's session
-- (one with a token expiry) keeps a record until its token expires, so the token revives it with
-- what it held (docs/architecture.md#sessions); the pooled session goes entirely.
-- KEYS[1] sessions idle index
-- ARGV[1] cutoff (ms)  ARGV[2] batch size  ARGV[3..9] key layout (Keyspace.layout)
-- Returns a flat list: user, session, upstream session id, protocol version, ...
--- @include "includes/keyLayout"
local keys = keyLayout(3)
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local claimed = {}
for _, member in ipairs(members) do
  local user, session = keys.split(member)
  local sessionKey, pooledKey = keys.session(user, session), keys.pooled(user)
  local fields = redis.call('HMGET', sessionKey, 'upstream', 'proto', 'exp')
  if fields[1] and fields[3] then
    redis.call('HDEL', sessionKey, 'upstream', 'lastUsed')
    redis.call('HSET', sessionKey, 'released', '1')
    redis.call('PEXPIREAT', sessionKey, fields[3])
  else
    redis.call('DEL', sessionKey)
  end
  redis.call('ZREM', KEYS[1], member)
  if redis.call('GET', pooledKey) == session then
    redis.call('DEL', pooledKey)
  end
  table.insert(claimed, user)
  table.insert(claimed, session)
  table.insert(claimed, fields[1] or '')
  table.insert(claimed, fields[2] or '')
end
return claimed
