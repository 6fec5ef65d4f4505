-- Records the newest relay entry written to a client's GET stream; never moves backwards
-- (two GETs of one session may write concurrently). Stream ids are '<ms>-<seq>'.
-- KEYS[1] state (hash)  ARGV[1] entry id  ARGV[2] ttl ms
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local current = redis.call('HGET', KEYS[1], 'delivered')
if current then
  local cms, cseq = parse(current)
  local nms, nseq = parse(ARGV[1])
  if cms > nms or (cms == nms and cseq >= nseq) then return 0 end
end
redis.call('HSET', KEYS[1], 'delivered', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
