-- suite_shim: runs spec/support/contact_suite.lua inside a host (nginx,
-- HAProxy) without busted, as busted would: `check(full_name)` runs every
-- before_each from the outermost in, then the check; `names()` lists the
-- checks in order. Used by openresty_runner and haproxy_runner.
--
--   local suite = require("suite_shim").new{ client = client, control = control }
--   suite.check("insert / creates a contact ..."); suite.names()
return {
  new = function(env)
    local checks, order = {}, {}
    local loaded = false
    local function load()
      if loaded then return end
      loaded = true
      local level = { hooks = {} }
      local stack = {}
      local shim = {
        describe = function(name, fn)
          stack[#stack + 1] = name
          local parent = level
          level = { parent = parent, hooks = {} }
          fn()
          level = parent
          stack[#stack] = nil
        end,
        before_each = function(fn) level.hooks[#level.hooks + 1] = fn end,
        it = function(name, fn)
          local full = table.concat(stack, " / ") .. " / " .. name
          if checks[full] then error("two suite checks named " .. full) end
          checks[full] = { level = level, fn = fn }
          order[#order + 1] = full
        end,
        assert = require "luassert",
      }
      require("contact_suite"){ busted = shim, client = env.client, control = env.control }
    end
    local suite = {}
    function suite.check(name)
      load()
      local check = checks[name]
      if not check then error("no contact suite check named " .. tostring(name)) end
      local chain = {}
      local l = check.level
      while l do
        table.insert(chain, 1, l)
        l = l.parent
      end
      for _, lv in ipairs(chain) do
        for _, hook in ipairs(lv.hooks) do hook() end
      end
      check.fn()
      return true
    end
    function suite.names()
      load()
      return order
    end
    return suite
  end,
}
