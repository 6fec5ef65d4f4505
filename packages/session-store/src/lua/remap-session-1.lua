-- Points a session at a new upstream session, but only if it still points at the one the
-- caller saw (compare-and-set), so two recoveries racing for one session keep one answer.
-- KEYS[1] session hash  ARGV[1] expected upstream id  ARGV[2] new upstream id
-- Returns the upstream id the session now has, or nil when the session is gone.
local current = redis.call('HGET', KEYS[1], 'upstream')
if not current then
  return nil
end
if current == ARGV[1] then
  redis.call('HSET', KEYS[1], 'upstream', ARGV[2])
  return ARGV[2]
end
return current
