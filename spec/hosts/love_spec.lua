-- LÖVE 11.4, headless (spec/hosts/love: conf.lua without window, main.lua):
-- the client is made in love.load, each love.update is one 60 Hz frame that
-- makes writes and calls client:poll(0), and love.quit closes the client with
-- a drain. Against the sandbox over HTTP and over HTTPS (its CA in ca_file).
--
-- Runs only under busted's luajit run: LÖVE brings its own LuaJIT and loads
-- build/luajit's envoke.core, which spec/check builds for that run; the other
-- interpreters' runs show it pending.
local harness = dofile("spec/hosts/harness.lua")
local sandbox_server = require "sandbox_server"

local CALLS, QUIT_CALLS = 300, 20

if harness.version() ~= "luajit" or not harness.installed("love") then
  describe("LÖVE host", function()
    pending("runs under luajit only, with love installed (make deps): LÖVE embeds LuaJIT")
  end)
  return
end

describe("LÖVE host (headless, LuaJIT)", function()
  local srv, dir

  setup(function()
    assert(harness.built("luajit"), "no build/luajit/envoke/core.so: make LUA=luajit")
    dir = harness.tmpdir("envoke-love")
    srv = sandbox_server.start{ tls = true }
  end)

  teardown(function()
    if srv then srv:stop() end
    harness.cleanup(dir)
  end)

  before_each(function() srv:reset() end)

  local function run(tls, name, drain_ms)
    local out = dir .. "/" .. name
    local env = harness.env(srv, tls, out, name, harness.private_home(dir))
    env.HOST_CALLS, env.HOST_QUIT_CALLS, env.HOST_DRAIN_MS = CALLS, QUIT_CALLS, drain_ms
    local code, log = harness.run_host(harness.command("love"), env, out .. ".log")
    assert.are.equal(0, code, log)
    return harness.check_run(srv, out, log, { calls = CALLS, quit_calls = QUIT_CALLS, drained = drain_ms > 0 })
  end

  it("saves every contact over HTTP; love.quit drains the quitting frame's calls", function()
    run(false, "love-http", 5000)
  end)

  it("saves every contact over HTTPS; love.quit with no drain time ends the rest as cancelled", function()
    run(true, "love-https", 0)
  end)
end)
