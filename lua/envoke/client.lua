--- The client: options, the request pipeline, lookups and lists.
--
--    local client = envoke.new{ api_id = "...", api_key = "..." }
--    local c = client:contact{ email = "jane@example.com" }
--
-- Bad arguments raise; failures of the world return `nil, err` (see `envoke.errors`).
-- @classmod envoke.client
local core = require "envoke.core"
local errors = require "envoke.errors"
local query = require "envoke.query"
local schema = require "envoke.schema"

local Client = {}
Client.__index = Client

local DEFAULT_BASE_URL = "https://e1.envoke.com"

-- Every option envoke.new accepts, with the Lua type it must have.
local OPTIONS = {
  api_id = "string", api_key = "string", token = "string", base_url = "string",
  timeout = "number", connect_timeout = "number", ca_file = "string", proxy = "string",
  user_agent = "string", verify = "boolean", max_body = "number", logger = "function",
  transport = "string|table", sandbox = "table",
}

local TRANSPORTS = { curl = "envoke.transport.curl", sandbox = "envoke.transport.sandbox" }

local function check_options(opts)
  if type(opts) ~= "table" then
    error("envoke.new: options must be a table, got " .. type(opts), 3)
  end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then error("envoke.new: unknown option '" .. tostring(k) .. "'", 3) end
    if not want:find(type(v), 1, true) then
      error(("envoke.new: option '%s' must be a %s, got %s"):format(k, want:gsub("|", " or "), type(v)), 3)
    end
  end
  for _, k in ipairs{ "timeout", "connect_timeout" } do
    local v = opts[k]
    if v ~= nil and not (v > 0 and v <= 86400) then
      error(("envoke.new: option '%s' must be from 0 to 86400 seconds (exclusive of 0), got %s"):format(k, v), 3)
    end
  end
end

--- Makes a client. Every option has a default.
-- @tparam[opt] table opts
--   `api_id`, `api_key` (default `ENVOKE_API_ID`, `ENVOKE_API_KEY`);
--   `token` (OAuth bearer token, instead of the id and key);
--   `base_url` (default `ENVOKE_BASE_URL`, else `https://e1.envoke.com`);
--   `timeout` (10), `connect_timeout` (5): seconds, fractions allowed;
--   `ca_file`, `proxy`, `user_agent`, `verify` (true), `max_body` (bytes);
--   `logger`: `function(event)` called for every request and outcome, secrets never included;
--   `transport`: `"curl"` (default), `"sandbox"` (in-process, no server), or a transport object;
--   `sandbox`: options for the in-process sandbox (`catalogue`, `clock`).
-- @treturn envoke.client
function Client.new(opts)
  opts = opts or {}
  check_options(opts)
  local self = setmetatable({}, Client)
  self.logger = opts.logger
  self.json = require("cjson.safe").new()
  local settings = {}
  for k, v in pairs(opts) do settings[k] = v end
  settings.api_id = settings.api_id or os.getenv("ENVOKE_API_ID")
  settings.api_key = settings.api_key or os.getenv("ENVOKE_API_KEY")
  settings.base_url = settings.base_url or os.getenv("ENVOKE_BASE_URL") or DEFAULT_BASE_URL
  local transport = opts.transport or "curl"
  if type(transport) == "string" then
    local module = TRANSPORTS[transport]
    if not module then
      error("envoke.new: option 'transport' must be 'curl' or 'sandbox', got '" .. transport .. "'", 2)
    end
    transport = require(module).new(settings)
  end
  self.transport = transport
  return self
end

--- Releases the client's connections (idempotent). Later calls raise.
function Client:close()
  if self.transport.close then self.transport:close() end
end

local function log(self, event)
  -- A logger that fails must not break the call it reports on.
  local ok, problem = pcall(self.logger, event)
  if not ok then io.stderr:write("envoke: logger failed: ", tostring(problem), "\n") end
end

--- Turns a transport's answer into decoded JSON or an error.
-- Shared by blocking and non-blocking calls.
-- @treturn table|nil decoded body (any 2xx), or nil
-- @treturn table err when the first value is nil
function Client:outcome(status, raw, headers)
  if not status then return nil, errors.from_transport(raw) end
  local data = self.json.decode(raw)
  if status >= 200 and status < 300 then
    if data == nil and raw ~= "" then
      return nil, errors.new("protocol", { status = status, message = "the response is not JSON", body = raw })
    end
    if type(data) == "table" and data.success == false then
      return nil, errors.from_response(status, data, headers, raw)
    end
    return data
  end
  return nil, errors.from_response(status, data, headers, raw)
end

--- Sends one request and decodes the answer.
-- The escape hatch under every other call; `path` carries its query string.
-- @tparam string method GET, POST, PATCH, DELETE ...
-- @tparam string path e.g. `"/v1/settings"`
-- @tparam[opt] table|string body encoded as JSON
-- @return the decoded JSON (any 2xx), or nil, err
function Client:request(method, path, body)
  if not self.logger then
    return self:outcome(self.transport:request(method, path, body))
  end
  log(self, { event = "request", method = method, path = path })
  local started = core.now()
  local status, raw, headers = self.transport:request(method, path, body)
  local data, err = self:outcome(status, raw, headers)
  log(self, { event = data and "response" or "error", method = method, path = path,
              status = status or nil, elapsed_ms = core.now() - started, error = err })
  return data, err
end

--- A new contact object bound to this client (nothing is sent).
-- `fields` go through the setters, so they are validated at once; `id` may be
-- given to address an existing contact.
-- @tparam[opt] table fields
-- @treturn envoke.contact
function Client:contact(fields)
  return require("envoke.contact").new(self, fields)
end

--- Checks an id the way a path needs it: a plain integer 1..4294967295.
-- @treturn string its decimal text
function Client.id_text(id, where)
  local n, problem = schema.normalize("id", id)
  if not n then error(("envoke: %s: id %s"):format(where, problem), 3) end
  return ("%d"):format(n)
end

local function contact_of(self, data)
  return require("envoke.contact").from_server(self, data)
end

--- One contact by its Envoke id.
-- @param id integer or numeric string
-- @return the contact, or nil, err (`kind = "not_found"` when there is none)
function Client:get(id)
  local data, err = self:request("GET", "/v1/contacts/" .. Client.id_text(id, "get"))
  if not data then return nil, err end
  if data == self.json.null or type(data) ~= "table" or next(data) == nil then
    return nil, errors.new("not_found", { status = 200, message = "no contact with id " .. tostring(id) })
  end
  return contact_of(self, data)
end

local KEYS = { id = true, email = true, remote_id = true }

--- The first contact whose key field matches: `client:find{ email = "a@b.c" }`.
-- @tparam table key exactly one of `id`, `email`, `remote_id`
-- @return the contact, or nil, err (`kind = "not_found"` when none matches)
function Client:find(key)
  local name, value
  if type(key) == "table" then
    for k, v in pairs(key) do
      if name or not KEYS[k] then
        error("envoke: find takes exactly one of id, email, remote_id", 2)
      end
      name, value = k, v
    end
  end
  if not name then error("envoke: find takes exactly one of id, email, remote_id", 2) end
  local ok, problem = schema.normalize(name, value)
  if not ok or value == "" then
    error(("envoke: find: %s %s"):format(name, problem or "must not be empty"), 2)
  end
  local list, err = self:list{ filter = { [name] = value }, limit = 1 }
  if not list then return nil, err end
  if not list[1] then
    return nil, errors.new("not_found", { message = ("no contact with %s %s"):format(name, tostring(value)) })
  end
  return list[1]
end

local LIST_OPTIONS = { filter = "table", sort = "table|string", fields = "table|string",
                       limit = "number", skip = "number", page_size = "number" }

local function list_params(opts, caller)
  opts = opts or {}
  for k, v in pairs(opts) do
    local want = LIST_OPTIONS[k]
    if not want or not want:find(type(v), 1, true) then
      error(("envoke: %s: %s"):format(caller, want and ("option '" .. k .. "' must be a " .. want:gsub("|", " or "))
        or ("unknown option '" .. tostring(k) .. "'")), 3)
    end
  end
  local params = { filter = opts.filter, skip = opts.skip }
  if type(opts.sort) == "string" then params.sort = { [opts.sort] = "ASC" } else params.sort = opts.sort end
  if type(opts.fields) == "table" then params.fields = table.concat(opts.fields, ",") else params.fields = opts.fields end
  return params
end

local function check_count(v, name, max, caller)
  if v ~= nil and not (v >= 1 and v <= max and v == math.floor(v)) then
    error(("envoke: %s: option '%s' must be an integer from 1 to %d"):format(caller, name, max), 3)
  end
end

--- One page of contacts (`GET /v1/contacts`).
-- @tparam[opt] table opts `filter` (a Lua table, see README), `sort` (`{ id = "DESC" }` or a field name),
--   `fields` (list of names), `limit` (1..100, default 10), `skip`
-- @return a list of contacts, or nil, err
function Client:list(opts)
  local params = list_params(opts, "list")
  check_count(opts and opts.limit, "limit", 100, "list")
  params.limit = opts and opts.limit
  local data, err = self:request("GET", query.path("/v1/contacts", params))
  if not data then return nil, err end
  if type(data) ~= "table" then
    return nil, errors.new("protocol", { message = "a list answered something else than an array" })
  end
  local out = {}
  for i, item in ipairs(data) do out[i] = contact_of(self, item) end
  return out
end

--- Every matching contact, paging with `skip`/`limit` by itself.
--    for c, err in client:contacts{ filter = { consent_status = "Express" } } do
--      if not c then error(err) end
--      print(c.email)
--    end
-- On a failure the loop yields `false, err` once and stops.
-- @tparam[opt] table opts as `list`, with `page_size` (1..100, default 100) instead of `limit`
-- @treturn function an iterator
function Client:contacts(opts)
  local params = list_params(opts, "contacts")
  check_count(opts and opts.page_size, "page_size", 100, "contacts")
  local page_size = opts and opts.page_size or 100
  local skip = params.skip or 0
  local page, index, done = {}, 0, false
  return function()
    if done then return nil end
    index = index + 1
    if page[index] == nil then
      if page.short then done = true return nil end
      local list, err = self:list{ filter = params.filter, sort = params.sort, fields = params.fields,
                                   limit = page_size, skip = skip }
      if not list then done = true return false, err end
      page, index = list, 1
      page.short = #list < page_size
      skip = skip + #list
      if list[1] == nil then done = true return nil end
    end
    return page[index]
  end
end

-- GET of a { "<id>": "<name>" } map, returned both ways.
local function name_map(self, path)
  local data, err = self:request("GET", path)
  if not data then return nil, err end
  local by_name, by_id = {}, {}
  for id, name in pairs(data) do
    local n = tonumber(id)
    if n then
      by_name[name] = n
      by_id[n] = name
    end
  end
  return by_name, by_id
end

--- The account's interests (tags, subscriptions, mandatory consent).
-- @treturn table name -> id
-- @treturn table id -> name
function Client:interests() return name_map(self, "/v1/interests") end

--- The account's nurtures (autoresponders).
-- @treturn table name -> id
-- @treturn table id -> name
function Client:autoresponders() return name_map(self, "/v1/autoresponders") end

--- Checks the credentials with the cheapest call (`GET /v1/settings`).
-- @return the account's settings table, or nil, err (`kind = "auth"` for bad credentials)
function Client:ping()
  return self:request("GET", "/v1/settings")
end

return Client
