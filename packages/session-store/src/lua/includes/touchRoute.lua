--[[
  Marks the user's route used when it is ready; a route the reaper claimed ("stopping") is left
  alone, so a request racing the claim does not put it back in the idle index.
  Returns 1 when touched, else 0.
]]
local function touchRoute(routeKey, routesIndex, userId, now)
  if redis.call('HGET', routeKey, 'state') ~= 'ready' then
    return 0
  end
  redis.call('HSET', routeKey, 'lastUsed', now)
  redis.call('ZADD', routesIndex, now, userId)
  return 1
end
