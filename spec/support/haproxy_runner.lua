-- haproxy_runner: the HAProxy side of the HAProxy specs (see haproxy_rig).
--
-- lua-load'ed by the rig's HAProxy (Lua 5.3, one thread). The service
-- `envoke_run` answers POST /run {code, args}: it compiles the Lua check in
-- `code` with the helpers below in scope, runs it inside the service (where
-- HAProxy's sockets work and calls yield), and answers
-- {"ok": true, "data": <what the check returned>} or {"ok": false, "message": ...}.
--
-- Helpers in a check's scope: `assert` (luassert), `cfg` (the rig's
-- settings), `args`, `envoke`, `cjson`, `client(opts)` (a client on the
-- sandbox, through the HAProxy transport), `transport(opts)` (a bare
-- HAProxy transport, on the echo server when the rig has one, else the
-- sandbox), `control(method, path, body)` (sandbox test controls: status,
-- decoded body), `pattern(n)` (the echo server's bytes), `now()` (ms),
-- `suite_check(name)` and `suite_names()` (the shared contact suite),
-- `misuse` (spec/support/transport_misuse.lua), `at_load` (what a client
-- made in this file's body answered there).

-- luacheck: globals core
local cjson = require "cjson"
local envoke = require "envoke"

local config = cjson.decode(os.getenv("ENVOKE_RIG") or "{}")

local function now()
  local t = core.now()
  return t.sec * 1000 + t.usec / 1000
end

local function pattern(n)
  local block = {}
  for i = 0, 255 do block[#block + 1] = string.char(i) end
  block = table.concat(block)
  local whole = math.floor(n / 256)
  return block:rep(whole) .. block:sub(1, n - whole * 256)
end

local function client(opts)
  local o = { base_url = config.sandbox.url, api_id = config.sandbox.api_id, api_key = config.sandbox.api_key }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c = envoke.new(o)
  if o.transport == nil and getmetatable(c.transport) ~= require("envoke.transport.haproxy").Transport then
    error("the client inside HAProxy did not choose the HAProxy transport", 2)
  end
  return c
end

local function transport(opts)
  local o = { base_url = config.echo and config.echo.url or config.sandbox.url }
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("envoke.transport.haproxy").new(o)
end

local control_transport
local function control(method, path, body)
  control_transport = control_transport or require("envoke.transport.haproxy").new{
    base_url = config.sandbox.url, api_id = config.sandbox.api_id, api_key = config.sandbox.api_key }
  local status, raw = control_transport:request(method, path, body)
  if not status then error("sandbox control " .. method .. " " .. path .. " failed: " .. tostring(raw.message), 2) end
  return status, raw ~= "" and cjson.decode(raw) or nil
end

local suite = require("suite_shim").new{ client = client, control = control }

-- A client made in the body, as the README's recipe does, and a call there:
-- HAProxy has no sockets yet, so it must answer `unavailable` at once.
local at_load = {}
do
  local c = client()
  local ok, err = c:ping()
  at_load.ok, at_load.kind, at_load.sent = ok ~= nil, err and err.kind, err and err.sent
  at_load.message = err and err.message
  at_load.client = c
end

local function reply(applet, t)
  local body = cjson.encode(t)
  applet:set_status(200)
  applet:add_header("content-type", "application/json")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end

core.register_service("envoke_run", "http", function(applet)
  local req = cjson.decode(applet:receive() or "{}")
  local scope = setmetatable({
    assert = require "luassert", cfg = config, args = req.args or {}, envoke = envoke, cjson = cjson,
    client = client, transport = transport, control = control, now = now, pattern = pattern,
    suite_check = suite.check, suite_names = suite.names, misuse = require "transport_misuse",
    at_load = at_load,
  }, { __index = _G })
  local fn, problem = load(req.code or "", "=check", "t", scope)
  if not fn then return reply(applet, { ok = false, message = "the check does not compile: " .. problem }) end
  local ok, result = xpcall(fn, function(e) return debug.traceback(tostring(e), 2) end)
  if not ok then return reply(applet, { ok = false, message = result }) end
  reply(applet, { ok = true, data = result == nil and cjson.null or result })
end)
