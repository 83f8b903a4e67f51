--- The default transport: envoke.core's libcurl pool, made from client options.
-- The pool itself is the transport object: `request`, `submit`, `perform`,
-- `finished`, `cancel` (`true, sent` or `false`: see pool:cancel in src/pool.c),
-- `pending`, `close`.
-- `request`/`submit` take a 5th argument, `envelope`: a qualifying 2xx write envelope then comes
-- back as `status, result_data_text, nil, true` (finished: with the id first); see pool:request.
-- @module envoke.transport.curl
local core = require "envoke.core"
local contract = require "envoke.transport.contract"

local curl = {}

-- Whole milliseconds for libcurl, which reads 0 as "no limit": a positive
-- fraction of a millisecond rounds up to 1, never down to 0.
local function ms(seconds)
  if not seconds then return nil end
  local n = math.floor(seconds * 1000 + 0.5)
  if n < 1 and seconds > 0 then n = 1 end
  return n
end

--- A pool for the client's settings (see `envoke.new`).
-- @local
function curl.new(s)
  local auth_user, auth_key = s.api_id, s.api_key
  if s.token then auth_user, auth_key = nil, nil end
  return core.pool{
    base_url = s.base_url,
    username = auth_user, password = auth_user and (auth_key or "") or nil,
    bearer = s.token,
    timeout_ms = ms(s.timeout or contract.TIMEOUT),
    connect_timeout_ms = ms(s.connect_timeout or contract.CONNECT_TIMEOUT),
    ca_file = s.ca_file, proxy = s.proxy, user_agent = s.user_agent,
    verify = s.verify, max_body = s.max_body,
  }
end

return curl
