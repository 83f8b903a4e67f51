-- A C program embedding Lua 5.4 (spec/hosts/c/host.c, built here with cc)
-- runs the host game (spec/hosts/driver.lua) in a fixed 60 Hz loop against
-- the sandbox, over HTTP and over HTTPS: 300 writes with many in flight,
-- then a quitting frame whose calls the close must drain or cancel.
--
-- Runs only under busted's lua5.4 run: the host embeds Lua 5.4 itself, so the
-- other interpreters' runs would repeat the same test (they show it pending).
local harness = dofile("spec/hosts/harness.lua")
local sandbox_server = require "sandbox_server"

local CALLS, QUIT_CALLS = 300, 20

if harness.version() ~= "5.4" then
  describe("C host (Lua 5.4)", function()
    pending("runs under lua5.4 only: the host embeds Lua 5.4 whatever busted runs under")
  end)
  return
end

describe("C host (Lua 5.4, 60 Hz loop)", function()
  local srv, dir, host

  setup(function()
    assert(harness.built("5.4"), "no build/5.4/envoke/core.so: make LUA=5.4")
    dir = harness.tmpdir("envoke-c-host")
    host = dir .. "/host"
    local built, problem = harness.build_c_host(host)
    assert(built, "cc failed: " .. tostring(problem))
    srv = sandbox_server.start{ tls = true }
  end)

  teardown(function()
    if srv then srv:stop() end
    harness.cleanup(dir)
  end)

  before_each(function() srv:reset() end)

  local function run(tls, name, drain_ms)
    local out = dir .. "/" .. name
    local env = harness.env(srv, tls, out, name, {
      HOST_CALLS = CALLS, HOST_QUIT_CALLS = QUIT_CALLS, HOST_DRAIN_MS = drain_ms })
    local code, log = harness.run_host(harness.command("c", host), env, out .. ".log")
    assert.are.equal(0, code, log)
    return harness.check_run(srv, out, log, { calls = CALLS, quit_calls = QUIT_CALLS, drained = drain_ms > 0 })
  end

  it("saves every contact over HTTP and drains the quitting frame's calls on close", function()
    run(false, "c-http", 5000)
  end)

  it("saves every contact over HTTPS and ends the quitting frame's calls on a close without drain", function()
    run(true, "c-https", 0)
  end)
end)
