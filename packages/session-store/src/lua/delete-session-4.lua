-- Deletes a session (its live mapping, or the record the reaper kept of it), its idle-index
-- entry, and the user's pooled pointer when it names it. With a tombstone TTL it also leaves a
-- tombstone, so the session's token is never revived: the client ended it
-- (docs/architecture.md#sessions).
-- KEYS[1] session hash  KEYS[2] pooled-session pointer  KEYS[3] sessions idle index  KEYS[4] tombstone
-- ARGV[1] session id  ARGV[2] index member  ARGV[3] tombstone TTL (ms; 0: no tombstone)
-- Returns the deleted session's upstream id ("" for a record) and protocol version, or nil when
-- there was nothing to delete.
local fields = redis.call('HMGET', KEYS[1], 'upstream', 'proto')
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[3])
end
if existed == 0 then
  return nil
end
return { fields[1] or '', fields[2] or '' }
