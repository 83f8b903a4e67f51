--- The in-process transport: requests go straight to a sandbox server object
-- (`envoke.sandbox`) in the same Lua state, with no socket at all. For users'
-- unit tests: `envoke.new{ transport = "in_process" }`.
-- It answers exactly as the sandbox over HTTP does, with the same interface as the
-- curl transport (`request`, `submit`, `perform`, `finished`, `cancel`, `pending`, `close`),
-- and raises on exactly what the network transports raise on (`envoke.transport.contract`),
-- so a test passes only code that also runs in production.
-- @module envoke.transport.in_process
local contract = require "envoke.transport.contract"

local Transport = {}
Transport.__index = Transport

local NAME = "envoke.transport.in_process"

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
  -- The options the network transports refuse (a bad base URL, CR or LF in
  -- a credential) raise here too; the URL itself is never used.
  contract.settings(NAME, s, contract.base64_encode)
  local self = setmetatable({}, Transport)
  local server = o.server or require("envoke.sandbox").new{
    api_id = api_id, api_key = api_key, catalogue = o.catalogue, clock = o.clock,
  }
  local headers = { ["content-type"] = "application/json", accept = "application/json" }
  if s.token then
    headers.authorization = "Bearer " .. s.token
  else
    headers.authorization = "Basic " .. contract.base64_encode(api_id .. ":" .. api_key)
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

-- The sandbox's answer to a checked request (body already text).
local function answer(self, method, path, body, headers)
  local p = private[self]
  local h = p.headers
  if headers then
    h = {}
    for k, v in pairs(p.headers) do h[k] = v end
    for k, v in pairs(headers) do h[k:lower()] = tostring(v) end
  end
  local path_only, q = path:match("^([^?]*)%??(.*)$")
  local status, rh, rbody = p.server:handle(method, path_only, q, h, body or "")
  return status, rbody, rh
end

--- Same contract as `envoke.core` pool:request.
-- @local
function Transport:request(method, path, body, headers)
  body = contract.check_request(NAME, self.closed, self.encode, method, path, body, headers)
  return answer(self, method, path, body, headers)
end

--- Answers at once; the result waits for `finished`.
-- @local
function Transport:submit(method, path, body, headers)
  body = contract.check_request(NAME, self.closed, self.encode, method, path, body, headers)
  self.next_id = self.next_id + 1
  self.done[#self.done + 1] = { self.next_id, answer(self, method, path, body, headers) }
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
