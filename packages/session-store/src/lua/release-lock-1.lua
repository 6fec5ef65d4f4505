-- Releases a lock only for the owner of its token, and wakes the waiters.
-- KEYS[1] lock  ARGV[1] token  ARGV[2] release channel
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], KEYS[1])
  return 1
end
return 0
