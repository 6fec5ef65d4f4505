-- Deletes a session, its idle-index entry, and the user's pooled pointer when it names it.
-- KEYS[1] session hash  KEYS[2] pooled-session pointer  KEYS[3] sessions idle index
-- ARGV[1] session id  ARGV[2] index member
-- Returns the deleted session's upstream id and protocol version, or nil when it did not exist.
local fields = redis.call('HMGET', KEYS[1], 'upstream', 'proto')
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if existed == 0 then
  return nil
end
return { fields[1] or '', fields[2] or '' }
