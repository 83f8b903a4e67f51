-- Everything beyond contacts a third time, inside nginx: every check of
-- spec/support/resource_suite.lua runs in the rig's nginx (LuaJIT, one
-- worker) through the cosocket transport, against the sandbox over HTTP.
local openresty_rig = require "openresty_rig"
local suite = require "resource_suite"

describe("resources inside nginx, through the cosocket transport", function()
  local rig
  setup(function() rig = openresty_rig.start() end)
  teardown(function() if rig then rig:stop() end end)

  local stack, names = {}, {}
  suite{
    busted = {
      describe = function(name, fn)
        describe(name, function()
          stack[#stack + 1] = name
          fn()
          stack[#stack] = nil
        end)
      end,
      it = function(name)
        local full = table.concat(stack, " / ") .. " / " .. name
        names[#names + 1] = full
        it(name, function()
          rig:run("return require('resource_runner').check(args.name, cfg)", { name = full })
        end)
      end,
      before_each = function() end, -- runs inside nginx, before each check
      assert = assert,
    },
    client = function() error("the suite runs inside nginx") end,
    control = function() error("the suite runs inside nginx") end,
  }

  it("ran every check of the suite, and nginx knows exactly those", function()
    assert.is_true(#names >= 19, "only " .. #names .. " checks")
    assert.are.same(names, rig:run("return require('resource_runner').names()"))
  end)
end)
