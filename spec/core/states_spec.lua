-- Several Lua states at once, one per thread, each loading envoke.core and
-- calling a real server: the core keeps no process-wide state but libcurl's
-- once-only initialisation (see spec/support/many_states.c).
local echo_server = require "echo_server"
local shell = require "sandbox.shell"

local version = jit and "luajit" or _VERSION:match("%d%.%d")
local flags = jit and "-I/usr/include/luajit-2.1 -lluajit-5.1"
  or ("-I/usr/include/lua%s -llua%s"):format(version, version)

describe("many Lua states", function()
  local srv, dir
  setup(function()
    srv = echo_server.start()
    dir = shell.tmpdir("envoke-states")
  end)
  teardown(function()
    if srv then srv:stop() end
    if dir then shell.run("rm -rf " .. shell.quote(dir)) end
  end)

  it("run side by side in threads, each with its own pools", function()
    local exe = dir .. "/many_states"
    local out, code = shell.run(("gcc -std=c99 -O1 -o %s spec/support/many_states.c %s -lpthread")
      :format(shell.quote(exe), flags))
    assert.are.equal(0, code, out)
    out, code = shell.run(("%s %s %s 4 25"):format(shell.quote(exe), shell.quote("./build/" .. version .. "/?.so"),
                                                   shell.quote(srv.url)))
    assert.are.equal("ok 200\n", out)
    assert.are.equal(0, code)
  end)
end)
