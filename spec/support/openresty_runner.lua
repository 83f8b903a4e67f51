-- openresty_runner: the nginx side of the OpenResty specs (see openresty_rig).
--
-- Loaded by the rig's nginx (LuaJIT, one worker). `run()` answers
-- POST /run {code, args}: it compiles the Lua check in `code` with the
-- helpers below in scope, runs it in the content phase (so cosockets, light
-- threads and ngx.sleep are all there), and answers
-- {"ok": true, "data": <what the check returned>} or {"ok": false, "message": ...}.
--
-- Helpers in a check's scope: `assert` (luassert), `cfg` (the rig's
-- settings), `args`, `envoke`, `cjson`, `client(opts)` (a client on the
-- sandbox, through the cosocket transport), `transport(opts)` (a bare
-- cosocket transport, on the echo server by default), `fresh(opts)` (the
-- same with a keep-alive pool of its own), `control(method,
-- path, body)` (sandbox test controls: status, decoded body), `pattern(n)`
-- (the echo server's bytes), `now()` (ms), `suite_check(name)` and
-- `suite_names()` (the shared contact suite), `scenario(name)` (a shared
-- fault scenario), `probes` (what ran in phases without cosockets).

-- luacheck: globals ngx
local cjson = require "cjson"

local M = {}

local config
local probes = {}

--- Stores the rig's settings (JSON text); runs in init_by_lua.
function M.init(json_text)
  config = cjson.decode(json_text)
  M.probe("init")
end

function M.init_worker()
  M.probe("init_worker")
  -- The way out the phase error suggests: a timer has cosockets.
  ngx.timer.at(0, function() M.probe("timer") end)
end

local function now()
  ngx.update_time()
  return ngx.now() * 1000
end

local function client(opts)
  local o = { base_url = config.sandbox.url, api_id = config.sandbox.api_id, api_key = config.sandbox.api_key }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c = require("envoke").new(o)
  if o.transport == nil and getmetatable(c.transport) ~= require("envoke.transport.ngx").Transport then
    error("the client inside nginx did not choose the cosocket transport", 2)
  end
  return c
end

local function transport(opts)
  local o = { base_url = config.echo and config.echo.url }
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("envoke.transport.ngx").new(o)
end

-- A transport with a pool of its own (a fresh account name), so a check
-- can count the connections it makes.
local fresh_count = 0
local function fresh(opts)
  fresh_count = fresh_count + 1
  local o = { api_id = "fresh-" .. fresh_count .. "-" .. ngx.worker.pid(), api_key = "k" }
  for k, v in pairs(opts or {}) do o[k] = v end
  return transport(o)
end

local control_transport
local function control(method, path, body)
  control_transport = control_transport or transport{ base_url = config.sandbox.url,
    api_id = config.sandbox.api_id, api_key = config.sandbox.api_key }
  local status, raw = control_transport:request(method, path, body)
  if not status then error("sandbox control " .. method .. " " .. path .. " failed: " .. tostring(raw.message), 2) end
  return status, raw ~= "" and cjson.decode(raw) or nil
end

--- Records what a call does in the current phase: the sync and the async
-- form, how long each took, how many attempts the logger saw.
function M.probe(phase)
  if probes[phase] then return "" end
  local record = { phase = ngx.get_phase() }
  probes[phase] = record
  local ok, problem = pcall(function()
    local events = {}
    local c = client{ logger = function(e) events[#events + 1] = e end }
    local t0 = now()
    local result, err = c:ping()
    record.elapsed_ms = now() - t0
    record.ok = result ~= nil
    if err then
      record.kind, record.message, record.sent, record.retryable = err.kind, err.message, err.sent, err.retryable
    end
    local requests = 0
    for _, e in ipairs(events) do if e.event == "request" then requests = requests + 1 end end
    record.requests = requests
    local handle = c:ping_async()
    local a, aerr = handle:wait(1000)
    record.async_ok = a ~= nil
    record.async_kind = aerr and aerr.kind
    record.async_message = aerr and aerr.message
  end)
  if not ok then record.raised = tostring(problem) end
  record.done = true
  return ""
end

function M.probes() return probes end

---------------------------------------------------------------- the contact suite

local suite = require("suite_shim").new{ client = client, control = control }
local suite_check, suite_names = suite.check, suite.names

---------------------------------------------------------------- checks

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.print(cjson.encode(t))
end

--- POST /run: runs the check in the body.
function M.run()
  ngx.req.read_body()
  local req = cjson.decode(ngx.req.get_body_data() or "{}")
  local fn, problem = loadstring(req.code, "=check")
  if not fn then return reply{ ok = false, message = "the check does not compile: " .. problem } end
  local scope = setmetatable({
    assert = require "luassert", cfg = config, args = req.args or {}, envoke = require "envoke", cjson = cjson,
    client = client, transport = transport, fresh = fresh, control = control, now = now, probes = probes,
    pattern = require("echo_server").pattern, suite_check = suite_check, suite_names = suite_names,
    scenario = function(name)
      return require("fault_scenarios").run_named(name, { client = client, control = control })
    end,
  }, { __index = _G })
  setfenv(fn, scope)
  local ok, result = xpcall(fn, function(e) return debug.traceback(tostring(e), 2) end)
  if not ok then return reply{ ok = false, message = result } end
  return reply{ ok = true, data = result == nil and cjson.null or result }
end

return M
