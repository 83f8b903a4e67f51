--- The sandbox: an offline Envoke contacts API (docs/envoke-api.md) in pure Lua.
--
--     local Sandbox = require "envoke.sandbox"
--     local sb = Sandbox.new{ api_id = "sandbox", api_key = "sandbox" }
--     local status, headers, body, action = sb:handle("GET", "/v1/settings", "", headers, "")
--
-- `handle` never raises: an internal error becomes a 500 envelope (no trace;
-- the trace goes to `GET /_sandbox/errors`).  `action` is nil for a normal
-- answer, or a table telling the host what an injected fault wants done
-- with the connection (see `envoke.sandbox.faults`):
--
--     { kind = "drop" }                       -- close without answering
--     { kind = "truncate", send = n }         -- send only the first n bytes of body
--     { kind = "malformed" }                  -- body is already broken; just send it
--     { kind = "delay", delay_ms = n }        -- wait n ms before answering
--                                             -- (only when no `sleep` was given)
-- @module envoke.sandbox

local catalogue = require "envoke.sandbox.catalogue"
local store = require "envoke.sandbox.store"
local faults = require "envoke.sandbox.faults"
local log = require "envoke.sandbox.log"
local auth = require "envoke.sandbox.auth"
local query = require "envoke.sandbox.query"
local json = require "envoke.sandbox.json"
local response = require "envoke.sandbox.response"
local contacts = require "envoke.sandbox.contacts"
local controls = require "envoke.sandbox.controls"
local beyond = require "envoke.sandbox.beyond"
local schema = require "envoke.schema"

local Sandbox = {}
Sandbox.__index = Sandbox

--- Largest request body accepted (a larger one is answered 413).
Sandbox.MAX_BODY = 1024 * 1024

local ROUTES = {
  { "^/v1/contacts$", { GET = contacts.list, POST = contacts.create, PATCH = contacts.update } },
  { "^/v1/contacts/([^/]+)$", { GET = contacts.get, PATCH = contacts.update, DELETE = contacts.delete } },
  { "^/v1/interests$", { GET = contacts.interests } },
  { "^/v1/autoresponders$", { GET = contacts.autoresponders } },
  { "^/v1/settings$", { GET = contacts.settings } },
}
for _, r in ipairs(beyond.routes) do ROUTES[#ROUTES + 1] = r end -- tags, hooks, sending, ... (envoke.sandbox.beyond)

--- Creates a sandbox.
-- @tparam[opt] table opts
--   `api_id`, `api_key` (default "sandbox"), `token` (a bearer token to accept),
--   `catalogue` (a spec, see `envoke.sandbox.catalogue`),
--   `clock` (function returning epoch seconds; default os.time),
--   `sleep` (function(seconds); when given, delay faults sleep through it),
--   `data_file` (path of the JSON data file; loaded when it exists),
--   `random` (function(n) -> n random bytes, for external ids),
--   `deliver` (function(request, done) posting a webhook delivery; see `envoke.sandbox.hooks`)
-- Raises on an invalid catalogue or an unreadable data file.
function Sandbox.new(opts)
  opts = opts or {}
  local self = setmetatable({}, Sandbox)
  self.creds = { api_id = opts.api_id or "sandbox", api_key = opts.api_key or "sandbox", token = opts.token }
  self.cat = catalogue.new(opts.catalogue)
  self.clock = opts.clock or os.time
  self.sleep = opts.sleep
  self.deliver = opts.deliver
  self.store = store.new({ data_file = opts.data_file, random = opts.random })
  self:clear_state()
  self.store:load()
  return self
end

function Sandbox:clear_state()
  beyond.reset(self)
  self.store:clear()
  self.log = log.new()
  self.faults = faults.new()
  self.offset = 0
  self.errors = {}
  self.settings = {}
  for k, v in pairs(self.cat.settings) do self.settings[k] = v end
end

--- Empties the account and the test state (contacts, log, faults, clock
-- offset, settings, errors); the data file, if any, is rewritten.
function Sandbox:reset()
  self:clear_state()
  self:changed()
end

--- The sandbox's clock: epoch seconds, moved by `/_sandbox/clock`.
function Sandbox:now()
  return math.floor(self.clock()) + self.offset
end

--- Called by handlers after a write: persists and notes what was refused.
function Sandbox:changed(notes)
  if self.current_entry and notes and #notes > 0 then self.current_entry.notes = json.array(notes) end
  local ok, err = self.store:save()
  if not ok then error("cannot write the data file: " .. tostring(err)) end
end

-- The request object handlers see.
local Request = {}
Request.__index = Request

--- The body as any JSON value, or nil and a function answering the 400.
function Request:json_value()
  if self.body == nil or self.body:find("^%s*$") then
    return nil, function() return response.invalid({ "the request body is empty: expected a JSON object" }) end
  end
  local value, err = json.decode(self.body)
  if value == nil then
    return nil, function() return response.fail(400, "Malformed JSON", { "malformed JSON body: " .. tostring(err) }) end
  end
  return value
end

--- The body as a JSON object, or nil and a function answering the 400.
function Request:json_object()
  local value, fail = self:json_value()
  if value == nil then return nil, fail end
  if type(value) ~= "table" or (next(value) ~= nil and schema.is_array(value)) then
    return nil, function() return response.invalid({ "the request body must be a JSON object" }) end
  end
  return value
end

local function route(routes, method, path)
  for _, r in ipairs(routes) do
    local captures = { path:match(r[1]) }
    if captures[1] ~= nil then
      local handler = r[2][method] or (method == "HEAD" and r[2].GET)
      if handler then return handler, captures[1] ~= path and captures[1] or nil end
      local allowed = {}
      for m in pairs(r[2]) do allowed[#allowed + 1] = m end
      table.sort(allowed)
      return nil, nil, allowed
    end
  end
  return nil
end

local function not_allowed(method, path, allowed)
  return response.fail(405, "Method Not Allowed",
    { method .. " is not allowed on " .. path .. "; use " .. table.concat(allowed, ", ") },
    { allow = table.concat(allowed, ", ") })
end

-- The request line as routed: the query split off the path when it came on
-- it, trailing slashes dropped.
local function normalize(method, path, query_string, headers)
  method = tostring(method or "GET"):upper()
  path = tostring(path or "/")
  if not query_string then
    local p, q = path:match("^([^?]*)%?(.*)$")
    if p then path, query_string = p, q end
  end
  query_string = query_string or ""
  if #path > 1 then path = path:gsub("/+$", "") end
  -- Envoke's newer pages write routes with a ".json" suffix; both forms are served.
  if path:find("^/v1/") then path = path:gsub("%.json$", "") end
  if path == "" then path = "/" end
  return method, path, query_string, headers or {}
end

local function control(self, req)
  local handler, _, allowed = route(controls.routes, req.method, req.path)
  if handler then return handler(self, req) end
  if allowed then return not_allowed(req.method, req.path, allowed) end
  return response.fail(404, "Not Found", { "no sandbox control at " .. req.path })
end

-- The answer to an API request, checked in Envoke's order; `params` is nil
-- when the query did not parse (`req.ordered` then says why).
local function answer(self, req, body_length, params)
  local method, path = req.method, req.path
  local length = body_length or (req.body and #req.body) or 0
  if length > Sandbox.MAX_BODY then
    return response.fail(413, "Payload Too Large",
      { "the request body is " .. length .. " bytes; the limit is " .. Sandbox.MAX_BODY })
  end
  if not beyond.api_path(path) then
    return response.fail(404, "Not Found", { "no route for " .. method .. " " .. path })
  end
  local header = req.headers.authorization or req.headers.Authorization
  if not auth.allowed(header, self.creds) then return response.unauthorized() end
  if not params then return response.invalid({ req.ordered }) end
  local handler, id, allowed = route(ROUTES, method, path)
  if allowed then return not_allowed(method, path, allowed) end
  if not handler then return response.fail(404, "Not Found", { "no route for " .. method .. " " .. path }) end
  req.id = id
  local watch = beyond.before(self, req)
  local status, out_headers, out_body = handler(self, req)
  beyond.after(self, watch, status, out_body)
  return status, out_headers, out_body
end

-- Runs a fault that replaces or wraps the answer.
local function with_fault(self, req, fault, body_length, params)
  if fault.kind == "status" then
    local headers = {}
    if fault.retry_after ~= nil then headers["retry-after"] = tostring(fault.retry_after) end
    return response.fail(fault.status, response.reason(fault.status),
      { "injected fault: " .. fault.status .. " " .. response.reason(fault.status) }, headers)
  elseif fault.kind == "drop" then
    return 444, {}, "", { kind = "drop" }
  end
  local status, headers, body = answer(self, req, body_length, params)
  if fault.kind == "drop_after" then
    return 444, {}, "", { kind = "drop" }
  elseif fault.kind == "truncate" then
    return status, headers, body, { kind = "truncate", send = math.floor(#body / 2) }
  elseif fault.kind == "malformed" then
    -- Cut inside the JSON, with a stray byte: no parser accepts it.
    return status, headers, body:sub(1, math.max(1, math.floor(#body / 2))) .. "\1", { kind = "malformed" }
  end
  return status, headers, body
end

-- The answer through an injected fault: its delay, then what it does to the
-- answer; the host is told of a delay it has to make.
local function faulted(self, req, fault, body_length, params)
  local delay
  if fault.delay_ms > 0 then
    if self.sleep then
      self.sleep(fault.delay_ms / 1000)
    else
      delay = { kind = "delay", delay_ms = fault.delay_ms }
    end
  end
  local status, headers, body, action = with_fault(self, req, fault, body_length, params)
  if not action then return status, headers, body, delay end
  if delay then action.delay_ms = delay.delay_ms end
  return status, headers, body, action
end

function Sandbox:dispatch(method, path, query_string, headers, body, body_length)
  method, path, query_string, headers = normalize(method, path, query_string, headers)
  local params, ordered = query.parse(query_string)
  local req = setmetatable({ method = method, path = path, body = body, headers = headers,
    params = params or {}, ordered = ordered }, Request)
  if path == "/_sandbox" or path:find("^/_sandbox/") then return control(self, req) end

  local entry = self.log:add(method, path, query_string, headers, body, schema.time.format_datetime(self:now()))
  self.current_entry = entry
  local fault = self.faults:take(method, path)
  local status, out_headers, out_body, action
  if fault then
    entry.fault = fault.kind
    status, out_headers, out_body, action = faulted(self, req, fault, body_length, params)
  else
    status, out_headers, out_body = answer(self, req, body_length, params)
  end
  entry.status = status
  self.current_entry = nil
  return status, out_headers, out_body, action
end

--- Answers one request.
-- @tparam string method
-- @tparam string path may carry `?query` when `query_string` is nil
-- @tparam[opt] string query_string without the `?`
-- @tparam[opt] table headers lower-case name -> value
-- @tparam[opt] string body
-- @tparam[opt] integer body_length the body's size when the host did not
--   read it (a body over the limit): only this is looked at
-- @treturn integer status
-- @treturn table headers (lower-case names)
-- @treturn string body
-- @treturn table|nil action for the host (see the module doc)
function Sandbox:handle(method, path, query_string, headers, body, body_length)
  local results
  local ok, err = xpcall(function()
    results = { self:dispatch(method, path, query_string, headers, body, body_length) }
    beyond.pump(self) -- webhook deliveries and scheduled messages that are due
  end, debug.traceback)
  if ok then return results[1], results[2], results[3], results[4] end
  self.current_entry = nil
  self.errors[#self.errors + 1] = tostring(err)
  if #self.errors > 100 then table.remove(self.errors, 1) end
  return response.fail(500, "Internal Server Error", { "internal error in the sandbox (see GET /_sandbox/errors)" })
end

return Sandbox
