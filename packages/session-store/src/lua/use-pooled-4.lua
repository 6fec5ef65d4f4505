-- The hot path of a session-less request: reads the user's pooled session and route and marks
-- both used (as touch-activity does), in one round trip.
-- KEYS[1] pooled-session pointer  KEYS[2] route hash  KEYS[3] sessions idle index  KEYS[4] routes idle index
-- ARGV[1] now (ms)  ARGV[2] session key TTL (ms)  ARGV[3] user id  ARGV[4..10] key layout (Keyspace.layout)
-- Returns { session id or "", session hash as a flat list, route hash as a flat list }.
--- @include "includes/keyLayout"
--- @include "includes/touchSession"
--- @include "includes/touchRoute"
local keys = keyLayout(4)
local now, user = ARGV[1], ARGV[3]
local id = redis.call('GET', KEYS[1])
local session = {}
if id then
  local key = keys.session(user, id)
  session = redis.call('HGETALL', key)
  if #session > 0 then
    touchSession(key, KEYS[1], KEYS[3], id, keys.member(user, id), now, ARGV[2])
  else
    id = false
  end
end
-- Read before the touch, as useSession's pipeline does: both report the route's previous use.
local route = redis.call('HGETALL', KEYS[2])
touchRoute(KEYS[2], KEYS[4], user, now)
return { id or '', session, route }
