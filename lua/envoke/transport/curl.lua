--- The default transport: envoke.core's libcurl pool, made from client options.
-- The pool itself is the transport object: `request`, `submit`, `perform`,
-- `finished`, `cancel`, `pending`, `close`.
-- @module envoke.transport.curl
local core = require "envoke.core"

local curl = {}

local function ms(seconds) return seconds and math.floor(seconds * 1000 + 0.5) end

--- A pool for the client's settings (see `envoke.new`).
-- @local
function curl.new(s)
  local auth_user, auth_key = s.api_id, s.api_key
  if s.token then auth_user, auth_key = nil, nil end
  return core.pool{
    base_url = s.base_url,
    username = auth_user, password = auth_user and (auth_key or "") or nil,
    bearer = s.token,
    timeout_ms = ms(s.timeout or 10),
    connect_timeout_ms = ms(s.connect_timeout or 5),
    ca_file = s.ca_file, proxy = s.proxy, user_agent = s.user_agent,
    verify = s.verify, max_body = s.max_body,
  }
end

return curl
