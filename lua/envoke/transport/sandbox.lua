--- An in-process transport: requests go straight to a sandbox server object
-- (`envoke.sandbox`) in the same Lua state, with no socket at all. For users'
-- unit tests: `envoke.new{ transport = "sandbox" }`.
-- It answers exactly as the HTTP sandbox does, with the same interface as the
-- curl transport (`request`, `submit`, `perform`, `finished`, `cancel`, `pending`, `close`).
-- @module envoke.transport.sandbox
local Transport = {}
Transport.__index = Transport

-- Each transport's server and headers, out of any table a caller can walk:
-- they hold the credentials (weak keys: they go with their transport).
local private = setmetatable({}, { __mode = "k" })

--- A transport with its own sandbox server.
-- @tparam table s the client's settings; `s.sandbox` may hold `server` (an
--   existing `envoke.sandbox` object to share) or `catalogue` and `clock`.
-- @local
function Transport.new(s)
  local o = s.sandbox or {}
  local api_id, api_key = s.api_id or "sandbox", s.api_key or "sandbox"
  local self = setmetatable({}, Transport)
  local server = o.server or require("envoke.sandbox").new{
    api_id = api_id, api_key = api_key, catalogue = o.catalogue, clock = o.clock,
  }
  local headers = { ["content-type"] = "application/json", accept = "application/json" }
  if s.token then
    headers.authorization = "Bearer " .. s.token
  else
    headers.authorization = require("envoke.sandbox.auth").basic(api_id, api_key)
  end
  private[self] = { server = server, headers = headers }
  self.encode = require("envoke.core").json_encode
  self.done = {}
  self.next_id = 0
  return self
end

--- The sandbox server this transport talks to (for a test's own checks).
-- @local
function Transport:server()
  return private[self].server
end

--- Same contract as `envoke.core` pool:request.
-- @local
function Transport:request(method, path, body, headers)
  if self.closed then error("envoke.transport.sandbox: attempt to use a closed transport", 2) end
  if type(body) == "table" then body = self.encode(body) end
  local p = private[self]
  local h = p.headers
  if headers then
    h = {}
    for k, v in pairs(p.headers) do h[k] = v end
    for k, v in pairs(headers) do h[k:lower()] = v end
  end
  local path_only, q = path:match("^([^?]*)%??(.*)$")
  local status, rh, rbody = p.server:handle(method, path_only, q, h, body or "")
  return status, rbody, rh
end

--- Answers at once; the result waits for `finished`.
-- @local
function Transport:submit(method, path, body, headers)
  self.next_id = self.next_id + 1
  local r = { self.next_id, self:request(method, path, body, headers) }
  self.done[#self.done + 1] = r
  return self.next_id
end

-- Answers are computed at submit time, so there is never anything to drive.
function Transport.perform() return 0 end

function Transport:finished()
  local r = table.remove(self.done, 1)
  if r then return r[1], r[2], r[3], r[4] end
  return nil
end

function Transport:cancel(id)
  for i, r in ipairs(self.done) do
    -- the sandbox answered at submit time: the request reached it
    if r[1] == id then table.remove(self.done, i) return true, true end
  end
  return false
end

function Transport:pending() return #self.done end

function Transport:close() self.closed = true end

return Transport
