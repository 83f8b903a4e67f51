--- When to try a failed request again, and after how long.
--
-- Exponential backoff with full jitter (randomness from the C core, never
-- `math.random`), capped per wait and in total, and never shorter than the
-- server's `Retry-After` (itself capped). Retried: connection failures,
-- timeouts, 429, 502, 503, 504. Never another 4xx or a 500. A request that
-- is not idempotent (an insert) is retried only when it provably never
-- reached the server (refused connection, DNS failure, TLS handshake).
-- @module envoke.retry
local core = require "envoke.core"
local raise = require("envoke.errors").raise

local retry = {}

--- The defaults, in seconds.
-- @local
retry.defaults = { max = 3, base_delay = 0.1, max_delay = 10, max_elapsed = 60, max_retry_after = 60 }

local FIELDS = { max = true, base_delay = true, max_delay = true, max_elapsed = true, max_retry_after = true }

--- A policy from the client's `retries` option.
-- @param opt nil (defaults), a number of retries (0 turns retrying off), or a
--   table with any of `max`, `base_delay`, `max_delay`, `max_elapsed`, `max_retry_after`
-- @treturn table|nil the policy, or nil when retrying is off
-- @local
function retry.policy(opt)
  local p = {}
  for k, v in pairs(retry.defaults) do p[k] = v end
  if type(opt) == "number" then
    p.max = opt
  elseif type(opt) == "table" then
    for k, v in pairs(opt) do
      if not FIELDS[k] then raise("envoke.new: unknown retries option '%s'", tostring(k)) end
      if type(v) ~= "number" or v < 0 or v ~= v then
        raise("envoke.new: retries option '%s' must be a number of seconds >= 0", k)
      end
      p[k] = v
    end
  elseif opt ~= nil then
    raise("envoke.new: option 'retries' must be a number or a table, got %s", type(opt))
  end
  if p.max ~= math.floor(p.max) or p.max < 0 or p.max > 100 then
    raise("envoke.new: option 'retries' must be an integer from 0 to 100")
  end
  if p.max == 0 then return nil end
  return p
end

--- Seconds to wait before the next attempt, or nil when not to retry.
-- @tparam table p a policy
-- @tparam integer attempts attempts made so far (1 after the first failure)
-- @tparam table err the failure (`retryable`, `sent`, `retry_after`)
-- @tparam boolean idempotent whether sending the request twice is harmless
-- @tparam number elapsed seconds since the first attempt began
-- @local
function retry.delay(p, attempts, err, idempotent, elapsed)
  if attempts > p.max or not err.retryable then return nil end
  if not idempotent and err.sent ~= false then return nil end
  local ceiling = p.base_delay * 2 ^ (attempts - 1)
  if ceiling > p.max_delay then ceiling = p.max_delay end
  local wait = ceiling * core.random()
  if err.retry_after then
    local floor = err.retry_after < p.max_retry_after and err.retry_after or p.max_retry_after
    if wait < floor then wait = floor end
  end
  if elapsed + wait > p.max_elapsed then return nil end
  return wait
end

return retry
