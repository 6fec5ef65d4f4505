-- After a claimed container is stopped: drops the route if it still names that container,
-- then releases the claim's lock (owner only) and wakes the waiters.
-- KEYS[1] route hash  KEYS[2] lock  ARGV[1] container id  ARGV[2] lock token  ARGV[3] release channel
local removed = 0
if redis.call('HGET', KEYS[1], 'containerId') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  removed = 1
end
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[3], KEYS[2])
end
return removed
