-- MAX_SESSIONS_PER_USER: records a new client session and pops the oldest beyond the cap.
-- KEYS[1] the user's sessions by creation time
-- ARGV[1] session id  ARGV[2] now (ms)  ARGV[3] cap  ARGV[4] key TTL (ms)
-- Returns the ids released (oldest first), for the caller to drop.
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over <= 0 then return {} end
local popped = redis.call('ZPOPMIN', KEYS[1], over)
local ids = {}
for i = 1, #popped, 2 do table.insert(ids, popped[i]) end
return ids
