-- The contact API suite a third time, inside HAProxy: every check of
-- spec/support/contact_suite.lua runs in the rig's HAProxy (Lua 5.3, one
-- thread) through the HAProxy transport (core.tcp), against the sandbox
-- over HTTP. Each check is one spec here; its failure comes back with its
-- traceback. Runs under busted's lua5.3 run (HAProxy embeds Lua 5.3).
local haproxy_rig = require "haproxy_rig"
local suite = require "contact_suite"

if _VERSION ~= "Lua 5.3" or rawget(_G, "jit") or not haproxy_rig.available() then
  describe("contact API inside HAProxy", function()
    pending("runs under lua5.3 only, with haproxy installed (make deps): HAProxy embeds Lua 5.3")
  end)
  return
end

describe("contact API inside HAProxy, through the core.tcp transport", function()
  local rig
  setup(function() rig = haproxy_rig.start() end)
  teardown(function() if rig then rig:stop() end end)

  -- The suite declares its checks through these shims: each becomes a spec
  -- that asks HAProxy to run the check of the same full name there.
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
      before_each = function() end, -- runs inside HAProxy, before each check
      assert = assert,
    },
    client = function() error("the suite runs inside HAProxy") end,
    control = function() error("the suite runs inside HAProxy") end,
  }

  it("ran every check of the suite, and HAProxy knows exactly those", function()
    assert.is_true(#names >= 25, "only " .. #names .. " checks")
    assert.are.same(names, rig:run("return suite_names()"))
  end)
end)
