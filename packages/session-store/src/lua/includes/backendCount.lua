--[[
  MAX_BACKENDS counts every backend that runs or is being started: routed ones, users' starts in
  flight, ready spares of the warm pool and spares being started. Lapsed reservations go first
  (a replica that died mid-start frees its slot).
]]
local function backendCount(routesIndex, starts, spares, spareStarts, now)
  redis.call('ZREMRANGEBYSCORE', starts, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', spareStarts, '-inf', now)
  return redis.call('ZCARD', routesIndex) + redis.call('ZCARD', starts)
    + redis.call('LLEN', spares) + redis.call('ZCARD', spareStarts)
end
