-- HAProxy 2.6 (Lua 5.3), one thread: a lua-load'ed service makes an envoke
-- client and calls client:ping(). The client chooses the HAProxy transport
-- (core.tcp) by itself, so the call yields to HAProxy while it waits: with
-- the sandbox holding its answer back, another frontend of the same
-- HAProxy keeps answering (a libcurl call would hold HAProxy's event loop,
-- and every frontend with it, for the whole request).
--
-- Runs only under busted's lua5.3 run: HAProxy embeds Lua 5.3 and loads
-- build/5.3's envoke.core, which spec/check builds for that run; the other
-- interpreters' runs show it pending.
local harness = dofile("spec/hosts/harness.lua")
local sandbox_server = require "sandbox_server"
local socket = require "socket"

if harness.version() ~= "5.3" or not harness.installed("haproxy") then
  describe("HAProxy host", function()
    pending("runs under lua5.3 only, with haproxy installed (make deps): HAProxy embeds Lua 5.3")
  end)
  return
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- Sends a GET on a new connection and returns the connection (answer unread).
local function send_get(port)
  local conn = assert(socket.tcp())
  conn:settimeout(30)
  assert(conn:connect("127.0.0.1", port))
  assert(conn:send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
  return conn
end

-- Reads the whole answer: status and body.
local function answer(conn)
  local text, err, partial = conn:receive("*a")
  conn:close()
  text = text or partial or ""
  return tonumber(text:match("^HTTP/%d%.%d (%d+)")), text:match("\r\n\r\n(.*)$") or "", err
end

describe("HAProxy host (Lua 5.3, nbthread 1)", function()
  local srv, dir, pid, envoke_port, other_port

  local function haproxy_log() return harness.shell.read_file(dir .. "/haproxy.log") or "" end

  setup(function()
    assert(harness.built("5.3"), "no build/5.3/envoke/core.so: make LUA=5.3")
    dir = harness.tmpdir("envoke-haproxy")
    srv = sandbox_server.start()
    envoke_port, other_port = free_port(), free_port()
    local q = harness.shell.quote
    local template = assert(harness.shell.read_file(harness.root .. "/spec/hosts/haproxy/haproxy.cfg.in"))
    local values = { DIR = dir, ROOT = harness.root, ENVOKE_PORT = envoke_port, OTHER_PORT = other_port }
    local cfg = dir .. "/haproxy.cfg"
    harness.shell.write_file(cfg, (template:gsub("@([%u_]+)@", function(k) return tostring(values[k]) end)))
    local env = ("ENVOKE_BASE_URL=%s ENVOKE_API_ID=%s ENVOKE_API_KEY=%s"):format(
      q(srv.url), q(srv.api_id), q(srv.api_key))
    -- In the foreground (-db), so that its alerts (a Lua error) reach its log.
    local started, out = harness.daemon(("env %s haproxy -db -f %s >%s 2>&1 & echo $! >%s"):format(
      env, q(cfg), q(dir .. "/haproxy.log"), q(dir .. "/haproxy.pid")), dir .. "/haproxy.pid")
    assert(started, "haproxy did not start: " .. tostring(out))
    pid = started
    for _ = 1, 500 do
      local probe = socket.connect("127.0.0.1", other_port)
      if probe then
        probe:close()
        return
      end
      socket.sleep(0.01)
    end
    error("haproxy does not listen: " .. haproxy_log())
  end)

  teardown(function()
    harness.stop(pid)
    if srv then srv:stop() end
    harness.cleanup(dir)
  end)

  it("answers client:ping() through core.tcp, and the other frontend answers while the ping waits", function()
    srv:reset()
    -- The sandbox holds the ping's answer back for 3 s.
    srv:fault{ path = "/v1/settings", kind = "delay", delay_ms = 3000, count = 1 }
    local pinged = send_get(envoke_port)
    local other = send_get(other_port)
    local other_status, other_body = answer(other)
    assert.are.equal(200, other_status)
    assert.are.equal("pong", other_body)
    -- The other frontend answered while the ping still waits on the sandbox.
    pinged:settimeout(0)
    local early, why = pinged:receive(1)
    assert.is_nil(early, "the ping answered before the other frontend did")
    assert.are.equal("timeout", why)
    pinged:settimeout(30)
    local status, body = answer(pinged)
    assert.are.equal(200, status, body .. haproxy_log())
    assert.are.equal("ok\n", body)
    local pings = 0
    for _, entry in ipairs(srv:log()) do
      if entry.path == "/v1/settings" then pings = pings + 1 end
    end
    assert.are.equal(1, pings)
  end)
end)
