--- A sandbox server for specs: start it in `setup()`, stop it in `teardown()`.
--
--     local sandbox_server = require "sandbox_server"
--     local srv
--     setup(function() srv = sandbox_server.start{ tls = true } end)
--     teardown(function() srv:stop() end)
--     before_each(function() srv:reset() end)
--
--     srv.url, srv.tls_url, srv.ca_file, srv.api_id, srv.api_key
--     srv:request("PATCH", "/v1/contacts/1", '{"city":"Toronto"}')  --> status, headers, body | nil, err
--     srv:reset()  srv:load{...}  srv:contacts()  srv:log()  srv:clear_log()
--     srv:advance(seconds)  srv:settings{allow_duplicate_emails = true}
--     srv:fault{kind = "status", status = 503, path = "/v1/contacts", count = 2}
--
-- Options of `start` are those of `sandbox.host.start` (port, api_id,
-- api_key, token, catalogue, catalogue_file, data_file) plus `tls = true`
-- for an HTTPS + HTTP/2 listener.  Requests go over a keep-alive HTTP/1.1
-- connection (luasocket); control calls raise on failure.
-- @module sandbox_server

local socket = require "socket"
local cjson = require "cjson"

local sandbox_server = {}

local Server = {}
Server.__index = Server

--- The methods of a started server, for wrappers that provide their own
-- `request` (e.g. an in-process sandbox with the same control helpers).
sandbox_server.methods = Server

--- The Basic Authorization header value for a user and password.
sandbox_server.basic = require("envoke.sandbox.auth").basic

local function close(self)
  if self.conn then
    self.conn:close()
    self.conn = nil
  end
end

local function read_response(conn)
  local line, err = conn:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then return nil, "bad status line: " .. line end
  local headers = {}
  while true do
    local h, herr = conn:receive("*l")
    if not h then return nil, herr end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
  end
  local body
  if headers["content-length"] then
    local n = tonumber(headers["content-length"])
    local part, berr, partial = conn:receive(n)
    if not part then return nil, "body: " .. tostring(berr), partial end
    body = part
  elseif (headers["transfer-encoding"] or ""):lower():find("chunked") then
    local parts = {}
    while true do
      local size_line, serr = conn:receive("*l")
      if not size_line then return nil, "chunk: " .. tostring(serr) end
      local size = tonumber(size_line:match("^%x+"), 16)
      if not size then return nil, "bad chunk size" end
      if size == 0 then
        conn:receive("*l")
        break
      end
      local chunk, cerr = conn:receive(size)
      if not chunk then return nil, "chunk: " .. tostring(cerr) end
      parts[#parts + 1] = chunk
      conn:receive("*l")
    end
    body = table.concat(parts)
  else
    body = conn:receive("*a") or ""
    headers.connection = "close"
  end
  return status, headers, body
end

--- Sends one request over the server's keep-alive connection.
-- @tparam string method
-- @tparam string target path and query, e.g. "/v1/contacts?limit=5"
-- @tparam[opt] string|table body a table is JSON-encoded
-- @tparam[opt] table headers extra headers; `authorization = false` sends none.
--   Default: the server's credentials.
-- @return status, headers (lower-case names), body; or nil and an error
--   (a dropped or truncated answer; the fourth value is then the partial body)
function Server:request(method, target, body, headers)
  if type(body) == "table" then body = cjson.encode(body) end
  local h = { host = "127.0.0.1:" .. self.port, authorization = sandbox_server.basic(self.api_id, self.api_key) }
  for k, v in pairs(headers or {}) do h[k:lower()] = v end
  if h.authorization == false then h.authorization = nil end
  if body then h["content-length"] = tostring(#body) end
  local lines = { method .. " " .. target .. " HTTP/1.1" }
  for k, v in pairs(h) do lines[#lines + 1] = k .. ": " .. v end
  local raw = table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")

  -- No retry on a failure: a retried request would hide an injected fault.
  if not self.conn then
    local conn = socket.tcp()
    conn:settimeout(self.timeout)
    local ok, err = conn:connect("127.0.0.1", self.port)
    if not ok then return nil, "connect: " .. tostring(err) end
    self.conn = conn
  end
  local sent, serr = self.conn:send(raw)
  if not sent then
    close(self)
    return nil, "send: " .. tostring(serr)
  end
  local status, rh, rbody = read_response(self.conn)
  if not status then
    close(self)
    return nil, rh, nil, rbody -- rbody: the partial body, if any
  end
  if (rh.connection or ""):lower():find("close") then close(self) end
  return status, rh, rbody
end

--- Calls a control and returns its decoded `result_data`; raises on failure.
function Server:control(method, path, body)
  local status, _, text = self:request(method, "/_sandbox/" .. path, body)
  if status ~= 200 then
    error("sandbox control " .. method .. " " .. path .. " failed: " .. tostring(status) .. " " .. tostring(text), 2)
  end
  return cjson.decode(text).result_data
end

--- Empties the account (contacts, log, faults, clock, settings).
function Server:reset(body) return self:control("POST", "reset", body) end
--- Loads contacts (read-shaped objects); returns them as stored.
function Server:load(list) return self:control("POST", "contacts", list) end
--- Every contact, with `_sandbox` internals.
function Server:contacts() return self:control("GET", "contacts") end
--- The request log.
function Server:log() return self:control("GET", "log") end
--- Clears the request log.
function Server:clear_log() return self:control("DELETE", "log") end
--- Moves the sandbox clock forward by `seconds`.
function Server:advance(seconds) return self:control("POST", "clock", { advance = seconds }) end
--- Changes account settings.
function Server:settings(t) return self:control("POST", "settings", t) end
--- Adds a fault (or a list of faults).
function Server:fault(spec) return self:control("POST", "faults", spec) end
--- Internal errors the sandbox caught.
function Server:errors() return self:control("GET", "errors") end

--- An envoke client on this server, with its credentials; opts are merged in.
function Server:client(opts)
  local o = { base_url = self.url, api_id = self.api_id, api_key = self.api_key }
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("envoke").new(o)
end

--- Stops the server and closes the connection (idempotent).
function Server:stop()
  close(self)
  if self.host then self.host.stop() end
end

--- Starts a sandbox server (see the module doc for the options).
function sandbox_server.start(opts)
  opts = opts or {}
  local host = require "sandbox.host"
  local host_opts = {}
  for k, v in pairs(opts) do
    if k ~= "tls" and k ~= "timeout" then host_opts[k] = v end
  end
  if opts.tls then host_opts.tls_port = true end
  local h = host.start(host_opts)
  return setmetatable({
    host = h, url = h.url, tls_url = h.tls_url, ca_file = h.ca_file, port = h.port, tls_port = h.tls_port,
    api_id = h.api_id, api_key = h.api_key, timeout = opts.timeout or 10,
  }, Server)
end

return sandbox_server
