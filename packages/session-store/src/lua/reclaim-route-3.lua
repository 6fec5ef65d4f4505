-- MAX_BACKENDS is full and a new user needs a backend: claims the least recently used route
-- idle since before ARGV[1] whose user has nothing in flight on any replica, for removal, and
-- hands its slot to the new user in the same step (so no other start takes it meanwhile).
-- The claim is the reaper's (claim-routes): the victim's lock is held, its route "stopping".
-- KEYS[1] routes idle index  KEYS[2] users' starts in flight  KEYS[3] busy users (score: lapse, ms)
-- ARGV[1] cutoff (ms)  ARGV[2] now (ms)  ARGV[3] new user  ARGV[4] reservation TTL (ms)
-- ARGV[5] lock token  ARGV[6] lock TTL (ms)  ARGV[7..13] key layout (Keyspace.layout)
-- Returns {user, container id, endpoint} of the reclaimed route, or an empty list.
--- @include "includes/keyLayout"
local keys = keyLayout(7)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
local candidates = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 50)
for _, user in ipairs(candidates) do
  local routeKey = keys.route(user)
  if redis.call('EXISTS', routeKey) == 0 then
    redis.call('ZREM', KEYS[1], user)
  elseif user ~= ARGV[3] and not redis.call('ZSCORE', KEYS[3], user)
    and redis.call('HGET', routeKey, 'state') == 'ready'
    and redis.call('SET', keys.lock(user), ARGV[5], 'NX', 'PX', ARGV[6]) then
    redis.call('HSET', routeKey, 'state', 'stopping')
    redis.call('ZREM', KEYS[1], user)
    redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[4]), ARGV[3])
    local route = redis.call('HMGET', routeKey, 'containerId', 'endpoint')
    return {user, route[1] or '', route[2] or ''}
  end
end
return {}
