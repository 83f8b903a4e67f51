-- A C program embedding Lua 5.4 (spec/hosts/c/host.c, built here with cc)
-- runs the host game (spec/hosts/driver.lua) in a fixed 60 Hz loop against
-- the sandbox, over HTTP and over HTTPS: 300 writes with many in flight,
-- then a quitting frame whose calls the close must drain or cancel.
--
-- Runs only under busted's lua5.4 run: the host embeds Lua 5.4 itself, so the
-- other interpreters' runs would repeat the same test (they show it pending).
local harness = dofile("spec/hosts/harness.lua")

if harness.version() ~= "5.4" then
  describe("C host (Lua 5.4)", function()
    pending("runs under lua5.4 only: the host embeds Lua 5.4 whatever busted runs under")
  end)
  return
end

harness.host_suite{
  b = { describe = describe, it = it, setup = setup, teardown = teardown, before_each = before_each },
  title = "C host (Lua 5.4, 60 Hz loop)", tag = "c-host", version = "5.4",
  command = function(dir)
    local host = dir .. "/host"
    local built, problem = harness.build_c_host(host)
    assert(built, "cc failed: " .. tostring(problem))
    return harness.command("c", host)
  end,
  http = "saves every contact over HTTP and drains the quitting frame's calls on close",
  https = "saves every contact over HTTPS and ends the quitting frame's calls on a close without drain",
}
