-- Claims up to ARGV[2] routes idle since before ARGV[1] for removal. A claim takes the user's
-- lock (so no gateway starts or recovers that user's container meanwhile) and marks the route
-- "stopping" (so no gateway forwards to it); a user whose lock is held is skipped this sweep.
-- KEYS[1] routes idle index (members: user ids)
-- ARGV[1] cutoff (ms)  ARGV[2] batch size  ARGV[3] lock token  ARGV[4] lock TTL (ms)
-- ARGV[5..11] key layout (Keyspace.layout)
-- Returns a flat list: user, container id, endpoint, ...
--- @include "includes/keyLayout"
local keys = keyLayout(5)
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local claimed = {}
for _, user in ipairs(members) do
  local routeKey = keys.route(user)
  if redis.call('EXISTS', routeKey) == 0 then
    redis.call('ZREM', KEYS[1], user)
  elseif redis.call('SET', keys.lock(user), ARGV[3], 'NX', 'PX', ARGV[4]) then
    redis.call('HSET', routeKey, 'state', 'stopping')
    redis.call('ZREM', KEYS[1], user)
    local route = redis.call('HMGET', routeKey, 'containerId', 'endpoint')
    table.insert(claimed, user)
    table.insert(claimed, route[1] or '')
    table.insert(claimed, route[2] or '')
  end
end
return claimed
