-- Records what a client set on its session that a new upstream session must be told again after
-- a revival: the last logging level, and the resources it subscribes to, a bounded set kept as
-- one field of URIs separated by newlines (a URI holds no raw whitespace, RFC 3986). Only a live
-- session is written: a record or a missing session is never brought back by this.
-- KEYS[1] session hash
-- ARGV[1] "level" | "subscribe" | "unsubscribe"  ARGV[2] the level or the URI  ARGV[3] most URIs kept
-- Returns 1 when recorded, 0 when the session is not live, -1 when the set of URIs is full.
if redis.call('HEXISTS', KEYS[1], 'upstream') == 0 then
  return 0
end
if ARGV[1] == 'level' then
  redis.call('HSET', KEYS[1], 'level', ARGV[2])
  return 1
end
local kept = {}
local present = false
for uri in string.gmatch(redis.call('HGET', KEYS[1], 'subs') or '', '[^\n]+') do
  if uri == ARGV[2] then
    present = true
  end
  if uri ~= ARGV[2] or ARGV[1] == 'subscribe' then
    table.insert(kept, uri)
  end
end
if ARGV[1] == 'subscribe' and not present then
  if #kept >= tonumber(ARGV[3]) then
    return -1
  end
  table.insert(kept, ARGV[2])
end
if #kept == 0 then
  redis.call('HDEL', KEYS[1], 'subs')
else
  redis.call('HSET', KEYS[1], 'subs', table.concat(kept, '\n'))
end
return 1
