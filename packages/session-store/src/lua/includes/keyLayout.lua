--[[
  The keys of a user a script finds in an index, built from the layout keys.ts passes as the
  script's last arguments (Keyspace.layout, from ARGV[first] on), so no script spells a key name.
]]
local function keyLayout(first)
  local userHead, userTail = ARGV[first], ARGV[first + 1]
  local sessionPart, pooledPart = ARGV[first + 2], ARGV[first + 3]
  local routePart, lockPart = ARGV[first + 4], ARGV[first + 5]
  local separator = ARGV[first + 6]
  local function user(userId)
    return userHead .. userId .. userTail
  end
  return {
    session = function(userId, sessionId) return user(userId) .. sessionPart .. sessionId end,
    pooled = function(userId) return user(userId) .. pooledPart end,
    route = function(userId) return user(userId) .. routePart end,
    lock = function(userId) return user(userId) .. lockPart end,
    member = function(userId, sessionId) return userId .. separator .. sessionId end,
    -- A sessions index member's user and session id.
    split = function(member)
      local at = string.find(member, separator, 1, true)
      return string.sub(member, 1, at - 1), string.sub(member, at + #separator)
    end,
  }
end
