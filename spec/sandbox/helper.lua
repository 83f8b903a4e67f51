--- Shared by spec/sandbox: runs the same specs against the sandbox core
-- in-process and over HTTP (nginx), with small request helpers.
--
--     local helper = require("spec.sandbox.helper").init(describe, setup, teardown, before_each)
--     helper.each_transport(function(T) it(...) end)
--
-- `T:call(method, target, body, headers)` -> `{status, headers, body, json, action}`;
-- `T:ok(...)` asserts a 200 and returns the decoded body; `T:invalid(...)`
-- asserts a 400 envelope and returns its errors; `T:insert(fields)` inserts
-- and returns the contact; the control helpers of `sandbox_server`
-- (`reset`, `load`, `contacts`, `log`, `advance`, `settings`, `fault`) work on both.

local cjson = require "cjson.safe"
local Sandbox = require "envoke.sandbox"
local sandbox_server = require "sandbox_server"

local helper = {}

helper.cjson = cjson

local AUTH = sandbox_server.basic("sandbox", "sandbox")

-- In-process: the same request/control interface over Sandbox:handle.
local InProcess = setmetatable({}, { __index = sandbox_server.methods })
InProcess.__index = InProcess

function InProcess.new(opts)
  return setmetatable({ sb = Sandbox.new(opts), name = "in-process" }, InProcess)
end

function InProcess:request(method, target, body, headers)
  if type(body) == "table" then body = cjson.encode(body) end
  local h = { authorization = AUTH }
  for k, v in pairs(headers or {}) do h[k:lower()] = v end
  if h.authorization == false then h.authorization = nil end
  local path, query = target:match("^([^?]*)%??(.*)$")
  local status, rh, rbody, action = self.sb:handle(method, path, query, h, body)
  self.last_action = action
  return status, rh, rbody
end

function InProcess.stop() end

local Transport = {}
Transport.__index = Transport

--- A transport of the given kind ("in-process" or "http"), not yet started.
function helper.transport(kind, opts)
  return setmetatable({ kind = kind, opts = opts or {} }, Transport)
end

function Transport:start()
  if self.kind == "http" then
    self.server = sandbox_server.start(self.opts)
  else
    self.server = InProcess.new(self.opts)
  end
end

function Transport:stop()
  if self.server then self.server:stop() end
  self.server = nil
end

--- One request; the answer as a table.
function Transport:call(method, target, body, headers)
  self.server.last_action = nil
  local status, h, text, partial = self.server:request(method, target, body, headers)
  local res = { status = status, headers = h or {}, body = text, error = not status and h or nil,
    partial = partial, action = self.server.last_action }
  if type(text) == "string" then res.json = cjson.decode(text) end
  return res
end

local function describe_res(res)
  return tostring(res.status) .. " " .. tostring(res.body or res.error)
end

--- A request that must answer 200; returns the decoded body.
function Transport:ok(method, target, body, headers)
  local res = self:call(method, target, body, headers)
  assert(res.status == 200, "expected 200, got " .. describe_res(res))
  return res.json, res
end

helper.VALIDATION_FAILED = "Validation failed, see 'result_data' -> 'errors'"

--- A request that must answer a 400 envelope; returns its errors.
function Transport:invalid(method, target, body, headers)
  local res = self:call(method, target, body, headers)
  assert(res.status == 400, "expected 400, got " .. describe_res(res))
  assert(res.json and res.json.success == false, "not a failure envelope: " .. tostring(res.body))
  assert(type(res.json.result_data) == "table" and type(res.json.result_data.errors) == "table",
    "no result_data.errors: " .. tostring(res.body))
  return res.json.result_data.errors, res
end

--- Inserts a contact (POST /v1/contacts); returns it.
function Transport:insert(fields)
  local out = self:ok("POST", "/v1/contacts", fields)
  assert(out.success == true and out.result_text == "Created", "insert failed: " .. cjson.encode(out))
  return out.result_data
end

--- Updates a contact by id; returns it.
function Transport:patch(id, fields, query)
  local out = self:ok("PATCH", ("/v1/contacts/%d"):format(id) .. (query and "?" .. query or ""), fields)
  assert(out.success == true and out.result_text == "Updated", "update failed: " .. cjson.encode(out))
  return out.result_data
end

--- Reads a contact by id (JSON null -> nil).
function Transport:get(id)
  local out = self:ok("GET", ("/v1/contacts/%d"):format(id))
  if out == cjson.null then return nil end
  return out
end

-- The control helpers, on whichever server runs.
for _, name in ipairs { "reset", "load", "contacts", "log", "clear_log", "advance", "settings", "fault",
  "errors", "control" } do
  Transport[name] = function(self, ...) return self.server[name](self.server, ...) end
end

--- Hands the helper busted's block functions, which busted gives each spec
-- file's environment rather than the globals a module sees.
-- @return the helper
function helper.init(describe, setup, teardown, before_each)
  helper.busted = { describe = describe, setup = setup, teardown = teardown, before_each = before_each }
  return helper
end

--- Defines the same specs once per transport, each with its own sandbox
-- (started in setup, stopped in teardown, reset before each test).
-- @tparam function body receives the transport
-- @tparam[opt] table opts options for Sandbox.new / sandbox_server.start
function helper.each_transport(body, opts)
  local b = assert(helper.busted, "call helper.init(describe, setup, teardown, before_each) first")
  for _, kind in ipairs { "in-process", "http" } do
    b.describe("(" .. kind .. ")", function()
      local T = helper.transport(kind, opts)
      b.setup(function() T:start() end)
      b.teardown(function() T:stop() end)
      b.before_each(function() T:reset() end)
      body(T)
    end)
  end
end

--- Whether a list contains a string containing `needle`.
function helper.has_error(errors, needle)
  for _, e in ipairs(errors or {}) do
    if tostring(e):find(needle, 1, true) then return true end
  end
  return false
end

--- Asserts one of the errors mentions `needle`.
function helper.assert_error(errors, needle)
  assert(helper.has_error(errors, needle),
    "expected an error containing '" .. needle .. "', got " .. tostring(cjson.encode(errors)))
end

--- A valid sendable-consent body fragment.
function helper.express(extra)
  local t = { consent_status = "Express", consent_description = "Signed up on the website" }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

--- A copy of `t` with `extra`'s keys added.
function helper.with(t, extra)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

return helper
