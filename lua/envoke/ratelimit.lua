--- A token bucket: at most `rate` requests per second, shared by everything
-- a client sends, so a bulk job stays under an account's limit instead of
-- bouncing off 429s. A bucket holds one second's worth of tokens.
-- @module envoke.ratelimit
local ratelimit = {}

-- One request an hour: slower limits would make waits longer than a sleep may last.
local MIN_RATE = 1 / 3600

local Bucket = {}
Bucket.__index = Bucket

--- A bucket that allows `rate` requests per second.
-- @tparam number rate > 0
-- @tparam number now the current time in milliseconds (monotonic)
-- @local
function ratelimit.new(rate, now)
  if type(rate) ~= "number" or not (rate >= MIN_RATE and rate <= 1e6) then
    require("envoke.errors").raise("envoke.new: option 'rate_limit' must be a number of requests per second"
      .. " from 1/3600 (one an hour) to 1e6, got %s", tostring(rate))
  end
  local capacity = rate < 1 and 1 or rate
  return setmetatable({ per_ms = rate / 1000, capacity = capacity, tokens = capacity, stamp = now }, Bucket)
end

--- Reserves one request's slot.
-- @tparam number now milliseconds, same clock as `new`
-- @treturn number milliseconds to wait before sending (0: send now)
-- @local
function Bucket:reserve(now)
  local tokens = self.tokens + (now - self.stamp) * self.per_ms
  if tokens > self.capacity then tokens = self.capacity end
  self.stamp = now
  tokens = tokens - 1 -- may go negative: the debt is the wait
  self.tokens = tokens
  if tokens >= 0 then return 0 end
  return -tokens / self.per_ms
end

return ratelimit
