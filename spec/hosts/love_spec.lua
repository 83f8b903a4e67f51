-- LÖVE 11.4, headless (spec/hosts/love: conf.lua without window, main.lua):
-- the client is made in love.load, each love.update is one 60 Hz frame that
-- makes writes and calls client:poll(0), and love.quit closes the client with
-- a drain. Against the sandbox over HTTP and over HTTPS (its CA in ca_file).
--
-- Runs only under busted's luajit run: LÖVE brings its own LuaJIT and loads
-- build/luajit's envoke.core, which spec/check builds for that run; the other
-- interpreters' runs show it pending.
local harness = dofile("spec/hosts/harness.lua")

if harness.version() ~= "luajit" or not harness.installed("love") then
  describe("LÖVE host", function()
    pending("runs under luajit only, with love installed (make deps): LÖVE embeds LuaJIT")
  end)
  return
end

harness.host_suite{
  b = { describe = describe, it = it, setup = setup, teardown = teardown, before_each = before_each },
  title = "LÖVE host (headless, LuaJIT)", tag = "love", version = "luajit",
  command = function() return harness.command("love") end,
  env = function(dir) return harness.private_home(dir) end,
  http = "saves every contact over HTTP; love.quit drains the quitting frame's calls",
  https = "saves every contact over HTTPS; love.quit with no drain time ends the rest as cancelled",
}
