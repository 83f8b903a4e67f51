-- resource_runner: the nginx side of spec/openresty/resources_spec.lua.
-- Loads spec/support/resource_suite.lua inside the rig's nginx (see
-- openresty_rig) and runs one of its checks by full name, with a client on
-- the sandbox through the cosocket transport. A check runs as busted would
-- run it: every before_each from the outermost in, then the check.

-- luacheck: globals ngx
local cjson = require "cjson"

local M = {}

local suite, cfg

local function client(opts)
  local o = { base_url = cfg.sandbox.url, api_id = cfg.sandbox.api_id, api_key = cfg.sandbox.api_key }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c = require("envoke").new(o)
  if getmetatable(c.transport) ~= require("envoke.transport.ngx").Transport then
    error("the client inside nginx did not choose the cosocket transport", 2)
  end
  return c
end

local control_transport
local function control(method, path, body)
  control_transport = control_transport or require("envoke.transport.ngx").new{ base_url = cfg.sandbox.url,
    api_id = cfg.sandbox.api_id, api_key = cfg.sandbox.api_key }
  local status, raw = control_transport:request(method, path, body and cjson.encode(body) or nil)
  if not status then error("sandbox control " .. method .. " " .. path .. " failed: " .. tostring(raw.message), 2) end
  return status, raw ~= "" and cjson.decode(raw) or nil
end

local function load_suite()
  if suite then return suite end
  suite = { checks = {}, order = {} }
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
      if suite.checks[full] then error("two resource suite checks named " .. full) end
      suite.checks[full] = { level = level, fn = fn }
      suite.order[#suite.order + 1] = full
    end,
    assert = require "luassert",
  }
  require("resource_suite"){ busted = shim, client = client, control = control }
  return suite
end

--- Runs the check named `name`; `settings` is the rig's configuration (cfg).
function M.check(name, settings)
  cfg = settings
  local s = load_suite()
  local check = s.checks[name]
  if not check then error("no resource suite check named " .. tostring(name)) end
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

--- The full names of every check, in order.
function M.names()
  return load_suite().order
end

return M
