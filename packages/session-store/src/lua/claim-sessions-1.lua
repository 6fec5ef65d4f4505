-- Claims up to ARGV[2] sessions idle since before ARGV[1] and removes them, atomically: a
-- touch that lands first moves the score past the cutoff and the session is not claimed; a
-- touch that lands after finds the session gone and does not bring it back.
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
  local fields = redis.call('HMGET', sessionKey, 'upstream', 'proto')
  redis.call('DEL', sessionKey)
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
