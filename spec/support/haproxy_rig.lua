-- haproxy_rig: the busted side of the HAProxy specs.
--
--   local rig = require("haproxy_rig").start{ echo = true }   -- in setup()
--   local data = rig:run([[ return (client():ping()) ]])
--   local pending = rig:send([[ ... ]]) ... pending:wait()       -- concurrent checks
--   rig:get_other()                                             -- the unrelated frontend
--   rig:stop()                                                  -- in teardown()
--
-- `start` builds envoke.core for Lua 5.3 (HAProxy embeds Lua 5.3, whatever
-- Lua runs busted), starts the sandbox (with HTTPS), the echo server when
-- `echo` is set, and an HAProxy (`haproxy -db`, one thread) that lua-loads
-- spec/support/haproxy_runner.lua: its frontend `run` runs Lua checks inside
-- an HAProxy service, its frontend `other` answers "pong" by itself, and
-- `opts.config` adds sections (with @SANDBOX_TLS_PORT@, @CA_FILE@ (the
-- sandbox's CA), @SYSTEM_CA@ filled in).
-- rig.sandbox is the sandbox_server handle, rig.echo the echo server's.
local socket = require "socket"
local cjson = require "cjson"
local sandbox_server = require "sandbox_server"
local shell = require "sandbox.shell"

local M = {}

local root = (shell.run("pwd"):gsub("%s+$", ""))
local harness = dofile(root .. "/spec/hosts/harness.lua")

--- Whether this machine can run the rig (haproxy installed).
function M.available()
  return harness.installed("haproxy")
end

local built = false

--- Builds build/5.3/envoke/core.so (make is a no-op when it is current).
function M.build()
  if built then return end
  local out, code = shell.run("cd " .. shell.quote(root) .. " && make -s LUA=5.3")
  if code ~= 0 then error("haproxy_rig: make LUA=5.3 failed:\n" .. out, 0) end
  built = true
end

local CONFIG = [[
# The HAProxy of spec/support/haproxy_rig.lua (written by the rig).
global
  nbthread 1
  # Lua execution time of one check (time spent waiting does not count)
  tune.lua.service-timeout 60s
  # HAProxy 2.6's Lua sockets stall on an answer larger than one buffer
  # (README, HAProxy): the sandbox's log and list pages fit in 256 KB.
  tune.bufsize 262144
  lua-prepend-path @ROOT@/lua/?.lua
  lua-prepend-path @ROOT@/lua/?/init.lua
  lua-prepend-path @ROOT@/spec/support/?.lua
  lua-prepend-path @ROOT@/build/5.3/?.so cpath
  lua-load @ROOT@/spec/support/haproxy_runner.lua
@GLOBAL@

defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s

frontend run
  bind 127.0.0.1:@RUN_PORT@
  http-request use-service lua.envoke_run

# An unrelated frontend that must keep answering while checks wait.
frontend other
  bind 127.0.0.1:@OTHER_PORT@
  http-request return status 200 content-type text/plain string pong
]]

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local Rig = {}
Rig.__index = Rig

local function write_config(rig, opts)
  local values = { ROOT = root, RUN_PORT = rig.port, OTHER_PORT = rig.other_port,
                   SANDBOX_TLS_PORT = rig.sandbox.tls_port, CA_FILE = rig.sandbox.ca_file, GLOBAL = opts.global or "",
                   SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt" }
  local text = (CONFIG .. (opts.config or "")):gsub("@([%u_]+)@", function(k) return tostring(values[k]) end)
  shell.write_file(rig.dir .. "/haproxy.cfg", text)
end

local function settings(rig)
  local s = rig.sandbox
  return cjson.encode{
    sandbox = { url = s.url, tls_url = s.tls_url, api_id = s.api_id, api_key = s.api_key, port = s.port,
                tls_port = s.tls_port, ca_file = s.ca_file },
    echo = rig.echo and { url = rig.echo.url, port = rig.echo.port, tls_port = rig.echo.tls_port } or nil,
  }
end

local function launch(rig)
  local q = shell.quote
  local pid, out = harness.daemon(("env ENVOKE_RIG=%s haproxy -db -f %s >%s 2>&1 & echo $! >%s"):format(
    q(settings(rig)), q(rig.dir .. "/haproxy.cfg"), q(rig.dir .. "/haproxy.log"), q(rig.dir .. "/haproxy.pid")),
    rig.dir .. "/haproxy.pid")
  if not pid then error("haproxy_rig: haproxy did not start: " .. tostring(out)) end
  rig.pid = pid
  for _ = 1, 500 do
    local probe = socket.connect("127.0.0.1", rig.other_port)
    if probe then
      probe:close()
      return
    end
    socket.sleep(0.01)
  end
  error("haproxy_rig: haproxy does not listen:\n" .. rig:log())
end

--- Starts everything; opts: `echo` (an echo server too), `global` (lines for
-- the global section), `config` (extra sections).
function M.start(opts)
  opts = opts or {}
  M.build()
  local rig = setmetatable({ dir = harness.tmpdir("envoke-haproxy-rig") }, Rig)
  local ok, problem = pcall(function()
    rig.sandbox = sandbox_server.start{ tls = true }
    if opts.echo then rig.echo = require("echo_server").start() end
    rig.port, rig.other_port = free_port(), free_port()
    rig.url = "http://127.0.0.1:" .. rig.port
    write_config(rig, opts)
    launch(rig)
  end)
  if not ok then
    rig:stop()
    error(problem, 2)
  end
  return rig
end

--- HAProxy's own output (its alerts name a Lua error).
function Rig:log()
  return shell.read_file(self.dir .. "/haproxy.log") or ""
end

--- Stops HAProxy and the servers (idempotent).
function Rig:stop()
  if self.pid then harness.stop(self.pid) end
  self.pid = nil
  if self.echo then self.echo:stop() end
  if self.sandbox then self.sandbox:stop() end
  self.echo, self.sandbox = nil, nil
  if self.dir then harness.cleanup(self.dir) end
  self.dir = nil
end

-- One HTTP/1.0 exchange: HAProxy answers and closes, so the body ends at EOF.
local function open(port, method, path, body)
  local conn = socket.tcp()
  conn:settimeout(300)
  assert(conn:connect("127.0.0.1", port))
  local head = method .. " " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n"
  if body then head = head .. "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n" end
  assert(conn:send(head .. "\r\n" .. (body or "")))
  return conn
end

local function read(conn)
  local raw, err, partial = conn:receive("*a")
  conn:close()
  raw = raw or partial
  if not raw or raw == "" then error("haproxy_rig: no answer from HAProxy: " .. tostring(err), 3) end
  return tonumber(raw:match("^HTTP/%d%.%d (%d%d%d)")), raw:match("\r\n\r\n(.*)$") or ""
end

local Pending = {}
Pending.__index = Pending

--- Waits for a check sent with `send`: what it returned, or a raise with its failure.
function Pending:wait()
  local status, body = read(self.conn)
  self.finished_at = socket.gettime()
  local ok, decoded = pcall(cjson.decode, body)
  if status ~= 200 or not ok then
    error(("haproxy_rig: HAProxy answered %s: %s\n%s"):format(tostring(status), body:sub(1, 2000),
      self.rig:log():sub(-3000)), 2)
  end
  if not decoded.ok then error("inside HAProxy: " .. tostring(decoded.message), 2) end
  if decoded.data == cjson.null then return nil end
  return decoded.data
end

--- Sends a check and returns at once; `:wait()` reads its outcome.
function Rig:send(code, args)
  local body = cjson.encode{ code = code, args = args }
  return setmetatable({ rig = self, conn = open(self.port, "POST", "/run", body), sent_at = socket.gettime() },
    Pending)
end

--- Runs a check inside HAProxy; returns what it returned (raises on a failure).
function Rig:run(code, args)
  return self:send(code, args):wait()
end

--- GET on the unrelated frontend: status, body.
function Rig:get_other()
  return read(open(self.other_port, "GET", "/"))
end

return M
