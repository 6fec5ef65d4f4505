-- Renews a session (when it still exists) and the user's route (when it is ready), with their
-- idle-index scores, in one round trip. Never resurrects what the reaper already claimed.
-- KEYS[1] session hash (unused when ARGV[3] == "")  KEYS[2] pooled-session pointer
-- KEYS[3] sessions idle index  KEYS[4] routes idle index  KEYS[5] route hash
-- ARGV[1] now (ms)  ARGV[2] session key TTL (ms)  ARGV[3] session id ("" for none)  ARGV[4] user id
-- ARGV[5] the session's idle-index member
-- Returns { session touched (0/1), route touched (0/1) }.
--- @include "includes/touchSession"
--- @include "includes/touchRoute"
local now = ARGV[1]
local sessionTouched = 0
-- A record the reaper kept is not a live session: only a revival brings it back.
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], 'upstream') == 1 then
  touchSession(KEYS[1], KEYS[2], KEYS[3], ARGV[3], ARGV[5], now, ARGV[2])
  sessionTouched = 1
end
return { sessionTouched, touchRoute(KEYS[5], KEYS[4], ARGV[4], now) }
