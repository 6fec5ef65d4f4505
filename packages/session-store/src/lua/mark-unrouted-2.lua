-- A sweep found a managed container that may have no route (docs/architecture.md#reaper).
-- When the user's route names it after all, its mark is cleared and nothing is returned;
-- otherwise the sighting is counted and {first seen (ms), sweeps} returned. Atomic with route
-- writes, so a route recorded between the sweep's listing and this call is never a sighting.
-- KEYS[1] route hash  KEYS[2] unrouted marks (container id -> "<first seen ms>:<sweeps>")
-- ARGV[1] container id  ARGV[2] now (ms, an integer)
if redis.call('HGET', KEYS[1], 'containerId') == ARGV[1] then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return false
end
-- The time stays a string: tostring() of a number this large would give "1.7e+12".
local since, sweeps = ARGV[2], 1
local mark = redis.call('HGET', KEYS[2], ARGV[1])
if mark then
  local at = string.find(mark, ':', 1, true)
  since = string.sub(mark, 1, at - 1)
  sweeps = tonumber(string.sub(mark, at + 1)) + 1
end
redis.call('HSET', KEYS[2], ARGV[1], since .. ':' .. sweeps)
return {since, sweeps}
