-- Records which of a user's tools a `tools/list` answer annotates as safe to repeat
-- (readOnlyHint or idempotentHint) and which not, so a call lost with its server can be judged
-- (docs/architecture.md#recovery-and-replay). A set of names, bounded; a tool listed again
-- without the hint leaves it.
-- KEYS[1] the user's safe-tools set
-- ARGV[1] TTL (ms)  ARGV[2] most names kept  ARGV[3] how many safe names follow (n)
-- ARGV[4 .. 3+n] safe names, ARGV[4+n ..] names not safe
-- Returns the number of names in the set.
local safe = tonumber(ARGV[3])
for i = 4 + safe, #ARGV do
  redis.call('SREM', KEYS[1], ARGV[i])
end
local limit = tonumber(ARGV[2])
for i = 4, 3 + safe do
  if redis.call('SCARD', KEYS[1]) >= limit then
    break
  end
  redis.call('SADD', KEYS[1], ARGV[i])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return redis.call('SCARD', KEYS[1])
