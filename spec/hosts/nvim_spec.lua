-- Neovim 0.7, headless (spec/hosts/nvim/main.lua): the client is made when
-- the script loads, a vim.loop timer runs one frame every 16 ms (writes, then
-- client:poll(0)), and VimLeavePre closes the client with a drain. Against
-- the sandbox over HTTP and over HTTPS (its CA in ca_file).
--
-- Runs only under busted's luajit run: Neovim brings its own LuaJIT and loads
-- build/luajit's envoke.core, which spec/check builds for that run; the other
-- interpreters' runs show it pending.
local harness = dofile("spec/hosts/harness.lua")
local sandbox_server = require "sandbox_server"

local CALLS, QUIT_CALLS = 300, 20

if harness.version() ~= "luajit" or not harness.installed("nvim") then
  describe("Neovim host", function()
    pending("runs under luajit only, with nvim installed (make deps): Neovim embeds LuaJIT")
  end)
  return
end

describe("Neovim host (headless, vim.loop timer)", function()
  local srv, dir

  setup(function()
    assert(harness.built("luajit"), "no build/luajit/envoke/core.so: make LUA=luajit")
    dir = harness.tmpdir("envoke-nvim")
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
    local code, log = harness.run_host(harness.command("nvim"), env, out .. ".log")
    assert.are.equal(0, code, log)
    return harness.check_run(srv, out, log, { calls = CALLS, quit_calls = QUIT_CALLS, drained = drain_ms > 0 })
  end

  it("saves every contact over HTTP; VimLeavePre drains the quitting frame's calls", function()
    run(false, "nvim-http", 5000)
  end)

  it("saves every contact over HTTPS; a close with no drain time ends the rest as cancelled", function()
    run(true, "nvim-https", 0)
  end)
end)
