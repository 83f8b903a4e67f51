-- The contact API suite a second time, inside nginx: every check of
-- spec/support/contact_suite.lua runs in the rig's nginx (LuaJIT, one
-- worker) through the cosocket transport, against the sandbox over HTTP.
-- Each check is one spec here; its failure comes back with its traceback.
local openresty_rig = require "openresty_rig"
local suite = require "contact_suite"

describe("contact API inside nginx, through the cosocket transport", function()
  local rig
  setup(function() rig = openresty_rig.start() end)
  teardown(function() if rig then rig:stop() end end)

  -- The suite declares its checks through these shims: each becomes a spec
  -- that asks nginx to run the check of the same full name there.
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
        it(name, function() rig:run("return suite_check(args.name)", { name = full }) end)
      end,
      before_each = function() end, -- runs inside nginx, before each check
      assert = assert,
    },
    client = function() error("the suite runs inside nginx") end,
    control = function() error("the suite runs inside nginx") end,
  }

  it("ran every check of the suite, and nginx knows exactly those", function()
    assert.is_true(#names >= 25, "only " .. #names .. " checks")
    assert.are.same(names, rig:run("return suite_names()"))
  end)
end)
