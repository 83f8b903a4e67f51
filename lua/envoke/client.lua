--- The client: options, the request pipeline, lookups and lists.
--
--    local client = envoke.new{ api_id = "...", api_key = "..." }
--    local c = client:contact{ email = "jane@example.com" }
--
-- Bad arguments raise; failures of the world return `nil, err` (see `envoke.errors`).
-- @classmod envoke.client
local core = require "envoke.core"
local Contact = require "envoke.contact"
local errors = require "envoke.errors"
local query = require "envoke.query"
local retry = require "envoke.retry"
local schema = require "envoke.schema"
local contract = require "envoke.transport.contract"

local Client = {}
Client.__index = Client

local DEFAULT_BASE_URL = "https://e1.envoke.com"

-- The longest wait a call accepts (poll, wait, drain): one day, in milliseconds.
local MAX_WAIT_MS = 86400000

-- Every option envoke.new accepts, with the Lua type it must have.
local OPTIONS = {
  api_id = "string", api_key = "string", token = "string", base_url = "string",
  timeout = "number", connect_timeout = "number", ca_file = "string", proxy = "string",
  user_agent = "string", verify = "boolean", max_body = "number", logger = "function",
  transport = "string|table", sandbox = "table", retries = "number|table", rate_limit = "number",
  on_overlong = "string",
}

local TRANSPORTS = { curl = "envoke.transport.curl", in_process = "envoke.transport.in_process",
                     ngx = "envoke.transport.ngx", haproxy = "envoke.transport.haproxy" }
TRANSPORTS.sandbox = TRANSPORTS.in_process -- deprecated: 0.1.0's name

-- Inside nginx every request must go through cosockets: a blocking libcurl
-- call would stall every request the worker serves. Inside HAProxy the same
-- holds: its Lua sockets (core.tcp), or, in an HAProxy without tasks and
-- sleeps to build on, a refusal.
local function default_transport()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.socket and ngx.get_phase then return "ngx" end
  local haproxy = rawget(_G, "core")
  if type(haproxy) == "table" and haproxy.tcp and haproxy.register_service then
    if require("envoke.transport.haproxy").available() then return "haproxy" end
    return require("envoke.transport.unavailable").new("inside HAProxy a blocking call would stall its "
      .. "event loop, and this HAProxy lacks core.register_task or core.msleep for the core.tcp transport;"
      .. " pass transport = 'curl' to accept the stall")
  end
  return "curl"
end

local raise = errors.raise

local function check_options(opts)
  if type(opts) ~= "table" then raise("envoke.new: options must be a table, got %s", type(opts)) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then raise("envoke.new: unknown option '%s'", tostring(k)) end
    if not want:find(type(v), 1, true) then
      raise("envoke.new: option '%s' must be a %s, got %s", k, (want:gsub("|", " or ")), type(v))
    end
  end
  if opts.on_overlong ~= nil and opts.on_overlong ~= "error" and opts.on_overlong ~= "truncate" then
    raise("envoke.new: option 'on_overlong' must be 'error' or 'truncate', got '%s'", opts.on_overlong)
  end
  for _, k in ipairs{ "timeout", "connect_timeout" } do
    local v = opts[k]
    if v ~= nil and not (v > 0 and v <= 86400) then
      raise("envoke.new: option '%s' must be from 0 to 86400 seconds (exclusive of 0), got %s", k, v)
    end
  end
end

local function env(name)
  local v = os.getenv(name)
  if v ~= "" then return v end
end

-- The options with the environment's defaults filled in.
local function settings_of(opts)
  local settings = {}
  for k, v in pairs(opts) do settings[k] = v end
  settings.api_id = settings.api_id or env("ENVOKE_API_ID")
  settings.api_key = settings.api_key or env("ENVOKE_API_KEY")
  settings.base_url = settings.base_url or env("ENVOKE_BASE_URL") or DEFAULT_BASE_URL
  settings.ca_file = settings.ca_file or env("ENVOKE_CA_FILE")
  return settings
end

-- Without credentials every call would fail with a 401: say so at once.
local function check_credentials(s, transport)
  if s.token or TRANSPORTS[transport] == TRANSPORTS.in_process or type(transport) == "table" then return end
  if not s.api_id or not s.api_key then
    raise("envoke.new: no credentials: give api_id and api_key (or token), or set ENVOKE_API_ID and"
      .. " ENVOKE_API_KEY in the environment (missing: %s)", not s.api_id and "api_id" or "api_key")
  end
end

local function secrets_of(s)
  local basic = s.api_id and contract.base64_encode(s.api_id .. ":" .. (s.api_key or ""))
  return { s.api_key, s.token, basic }
end

--- Makes a client. Every option has a default.
-- @tparam[opt] table opts
--   `api_id`, `api_key` (default `ENVOKE_API_ID`, `ENVOKE_API_KEY`; required unless `token` is given);
--   `token` (OAuth bearer token, instead of the id and key);
--   `base_url` (default `ENVOKE_BASE_URL`, else `https://e1.envoke.com`);
--   `ca_file` (default `ENVOKE_CA_FILE`, else the system's CA store);
--   `timeout` (10), `connect_timeout` (5): seconds, fractions allowed;
--   `proxy`, `user_agent`, `verify` (true), `max_body` (bytes);
--   `logger`: `function(event)` called for every request and outcome, secrets never included;
--   `transport`: `"curl"` (the default outside nginx), `"ngx"` (cosockets; the default inside nginx),
--     `"haproxy"` (core.tcp; the default inside HAProxy),
--     `"in_process"` (an in-process sandbox, no server, no network), or a transport object;
--   `sandbox`: options for the in-process transport's sandbox (`server`, to share one; or `catalogue`, `clock`);
--   `retries`: how many times to retry a failure that allows it (default 3, 0 = off),
--     or `{ max, base_delay, max_delay, max_elapsed, max_retry_after }` in seconds (see `envoke.retry`);
--   `rate_limit`: at most this many requests per second, for everything the client sends;
--   `on_overlong`: `"error"` (default: a setter given a text longer than its field allows raises)
--     or `"truncate"` (it is cut to the limit in characters, and the logger gets a `truncated` event).
-- @treturn envoke.client
function Client.new(opts)
  opts = opts or {}
  check_options(opts)
  -- Fields the request path reads on every call are there from the start, as
  -- false when unset: a missing one is looked up in Client as well, each time.
  local self = setmetatable({ closed = false, bucket = false, async_engine = false }, Client)
  self.logger = opts.logger or false
  self.on_overlong = opts.on_overlong or "error"
  self.json = require("cjson.safe").new()
  self.retry = retry.policy(opts.retries) or false
  if opts.rate_limit then self.bucket = require("envoke.ratelimit").new(opts.rate_limit, core.now()) end
  local settings = settings_of(opts)
  local transport = opts.transport or default_transport()
  if type(transport) == "string" and not TRANSPORTS[transport] then
    raise("envoke.new: option 'transport' must be 'curl', 'ngx', 'haproxy' or 'in_process', got '%s'", transport)
  end
  local name = transport
  if type(transport) == "string" then
    local ok, made = pcall(require(TRANSPORTS[transport]).new, settings)
    if not ok then raise(errors.reason(made)) end
    transport = made
  end
  check_credentials(settings, name)
  self.transport = transport
  -- A closure, so the secrets are in no table a caller can walk.
  self.redact = errors.redactor(secrets_of(settings))
  -- Waits between retries belong to the transport where it has its own
  -- (a cosocket transport yields instead of blocking the worker).
  self.sleep = transport.sleep or core.sleep
  require("envoke.resources").attach(self) -- client.tags, client.hooks, ... (envoke.resources)
  return self
end

--- Raises "client is closed" at the caller's line once `close` has run.
-- @local
function Client:check_open()
  if self.closed then raise("client is closed") end
end

--- Drives the calls in flight until none is left or `ms` milliseconds have passed.
-- A host calls it from its quit hook, so calls made in the last frame are sent.
-- @tparam number ms how long it may take, in milliseconds
-- @treturn boolean true when no call is left pending
function Client:drain(ms)
  if type(ms) ~= "number" or not (ms >= 0 and ms <= MAX_WAIT_MS) then
    raise("drain: ms must be a number of milliseconds from 0 to %d", MAX_WAIT_MS)
  end
  if self.closed or not self.async_engine then return true end
  return self.async_engine:drain(ms)
end

--- Ends the client (idempotent). Calls still in flight end with a `cancelled`
-- error (its `sent` says whether the request may have reached the server) and
-- their callbacks run now; `pending()` is 0 afterwards and later calls raise
-- "client is closed".
-- @tparam[opt] table opts `drain_ms`: first drive the calls in flight for up to this long
function Client:close(opts)
  if opts ~= nil then
    if type(opts) ~= "table" then raise("close: options must be a table, got %s", type(opts)) end
    for k in pairs(opts) do
      if k ~= "drain_ms" then raise("close: unknown option '%s'", tostring(k)) end
    end
    if opts.drain_ms then self:drain(opts.drain_ms) end
  end
  if self.closed then return end
  self.closed = true
  if self.async_engine then self.async_engine:shutdown() end
  if self.transport.close then self.transport:close() end
end

--- Hands an event to the logger; a logger that fails does not break the call it reports on.
-- @local
function Client:log(event)
  local ok, problem = pcall(self.logger, event)
  if not ok then io.stderr:write("envoke: logger failed: ", tostring(problem), "\n") end
end

local json_envelope = core.json_envelope

--- Turns a transport's answer into decoded JSON or an error.
-- Shared by blocking and non-blocking calls. With `envelope` (a write), a 2xx
-- answer is validated whole in C and its `result_data` returned as raw JSON
-- text, for the contact to decode only when read.
-- @treturn table|string|nil decoded body (any 2xx), raw result_data, or nil
-- @treturn table err when the first value is nil
-- @local
-- `expect`: the kinds a 400 may mean for this request (see `errors.from_response`).
function Client:outcome(status, raw, headers, envelope, expect)
  if not status then return nil, self.redact(errors.from_transport(raw)) end
  local data, err
  if status >= 200 and status < 300 then
    data, err = self:success(status, raw, envelope, expect)
  else
    err = errors.from_response(status, self.json.decode(raw), headers, raw, expect)
  end
  if err then return nil, self.redact(err) end
  return data
end

local function protocol(status, message, raw)
  return nil, errors.new("protocol", { status = status, message = message, body = raw })
end

-- A write's envelope: `success` must be exactly true or false (core.json_envelope,
-- the rule the pool applies to its envelope argument too).
local function envelope_outcome(self, status, raw, expect)
  local data, verdict, detail = json_envelope(raw)
  if data then return data end
  if verdict == "false" then return nil, errors.from_response(status, self.json.decode(raw), nil, raw, expect) end
  if verdict == "invalid" then return protocol(status, "the response is not JSON: " .. detail, raw) end
  if verdict == "result_data" then return protocol(status, "the answer has no contact in result_data", raw) end
  return protocol(status, "the answer's 'success' is " .. (detail or "missing") .. ", not true or false", raw)
end

--- A 2xx answer: decoded JSON (never nil or false), or nil, err.
-- @local
function Client:success(status, raw, envelope, expect)
  if envelope == "text" then return raw end -- the plan's finish reads the raw text (legacy SendEmails)
  if envelope then return envelope_outcome(self, status, raw, expect) end
  if raw == "" then return true end -- 204, or a 2xx with no body: nothing to decode
  local data = self.json.decode(raw)
  if data == nil then return protocol(status, "the response is not JSON", raw) end
  if data == false then return protocol(status, "the response is JSON false", raw) end
  if type(data) == "table" and data.success == false then
    return nil, errors.from_response(status, data, nil, raw)
  end
  return data
end

--- Runs a plan to the end, blocking (see `envoke.async`: one pipeline for
-- blocking and non-blocking calls). A plan is `{ method, path, body, headers,
-- idempotent, envelope, expect, finish = function(plan, data) }`.
-- @local
function Client:execute(plan)
  if self.closed then raise("client is closed") end
  return (self.async_engine or self:engine()):run(plan)
end

local METHODS = { GET = true, HEAD = true, POST = true, PUT = true, PATCH = true, DELETE = true }

-- The body of a raw request as JSON text, encoded now so that a value JSON
-- cannot hold raises at the caller's line, whatever the transport.
local function raw_body(method, body)
  if body == nil or type(body) == "string" then
    if body and (method == "GET" or method == "HEAD") then raise("request: a %s request has no body", method) end
    return body
  end
  if type(body) ~= "table" then raise("request: body must be a table, a string or nil, got %s", type(body)) end
  if method == "GET" or method == "HEAD" then raise("request: a %s request has no body", method) end
  local ok, text = pcall(core.json_encode, body)
  if not ok then raise("request: body cannot be encoded as JSON: %s", errors.reason(text)) end
  return text
end

-- A raw request's plan, checked the same way whatever the transport. Only a
-- POST that is not an upsert creates something, so only that one must not be sent twice.
local function raw_plan(method, path, body)
  if type(method) ~= "string" or not METHODS[method] then
    raise("request: method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, got %s", tostring(method))
  end
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" or path:find("[%s%c\128-\255#]") then
    raise("request: path must start with '/' and hold no space, control, '#' or non-ASCII byte"
      .. " (percent-encode them)")
  end
  return { method = method, path = path, body = raw_body(method, body),
           idempotent = method ~= "POST" or path:find("[?&]upsert=1") ~= nil }
end

--- Sends one request and decodes the answer (with retries and the rate limit).
-- The escape hatch under every other call; `path` carries its query string.
-- @tparam string method GET, POST, PATCH, DELETE ...
-- @tparam string path e.g. `"/v1/settings"`
-- @tparam[opt] table|string body encoded as JSON
-- @return the decoded JSON (any 2xx), or nil, err
function Client:request(method, path, body)
  return self:execute(raw_plan(method, path, body))
end

--- The client's async engine (made on first use).
-- @local
function Client:engine()
  local engine = self.async_engine
  if not engine then
    engine = require("envoke.async").new(self)
    self.async_engine = engine
  end
  return engine
end

--- Drives every non-blocking call in flight and runs the callbacks of the
-- finished ones. A host calls `poll(0)` once per frame.
-- @tparam[opt=0] number timeout_ms how long it may wait for an answer (0: never waits)
-- @treturn integer how many calls finished
function Client:poll(timeout_ms)
  if timeout_ms ~= nil and (type(timeout_ms) ~= "number" or not (timeout_ms >= 0 and timeout_ms <= MAX_WAIT_MS)) then
    raise("poll: timeout_ms must be a number of milliseconds from 0 to %d", MAX_WAIT_MS)
  end
  if not self.async_engine then return 0 end
  return self.async_engine:poll(timeout_ms)
end

--- How many non-blocking calls have not finished.
function Client:pending()
  return self.async_engine and self.async_engine.pending or 0
end

--- Non-blocking `request`: a handle at once; `callback(data, err, handle)` runs from `poll`.
function Client:request_async(method, path, body, callback)
  if callback == nil and type(body) == "function" then body, callback = nil, body end
  return self:engine():start(callback, raw_plan(method, path, body))
end

--- Saves many contacts concurrently (see `envoke.bulk`).
-- @tparam table contacts contacts or plain field tables
-- @tparam[opt] table opts `concurrency` (8), `keyfield`, `on_result(i, r)`, `on_progress(done, total)`
-- @treturn table one `{ ok, contact, err, attempts }` per input, in input order
-- @treturn table summary `{ total, succeeded, failed, retried, elapsed }`
function Client:save_all(contacts, opts) return require("envoke.bulk").run(self, "save", contacts, opts) end

--- Inserts many contacts concurrently; as `save_all`.
function Client:insert_all(contacts, opts) return require("envoke.bulk").run(self, "insert", contacts, opts) end

--- Upserts many contacts concurrently; as `save_all`.
function Client:upsert_all(contacts, opts) return require("envoke.bulk").run(self, "upsert", contacts, opts) end

--- A new contact object bound to this client (nothing is sent).
-- `fields` go through the setters, so they are validated at once; `id` may be
-- given to address an existing contact. Raises "client is closed" once `close` has run.
-- @function Client:contact
-- @tparam[opt] table fields
-- @treturn envoke.contact
Client.contact = Contact.new

--- Checks an id the way a path needs it: a plain integer 1..4294967295.
-- @treturn string its decimal text
-- @local
function Client.id_text(id, where)
  local n, problem = schema.normalize("id", id)
  if not n then raise("%s: id %s", where, problem) end
  return ("%d"):format(n)
end

local function contact_of(self, data)
  return Contact.from_server(self, data)
end

local function finish_list(plan, data)
  local items, err = Contact.list_items(data)
  if not items then return nil, err end
  if plan.key then
    local item, missing = Contact.matching(items, plan.key, plan.value)
    if not item then return nil, missing end
    return contact_of(plan.client, item)
  end
  local out = {}
  for i, item in ipairs(items) do out[i] = contact_of(plan.client, item) end
  return out
end

local KEYS = { id = true, email = true, remote_id = true }

local LIST_OPTIONS = { filter = "table", sort = "table|string", fields = "table|string",
                       limit = "number", skip = "number", page_size = "number" }

local function check_count(v, name, max, caller)
  if v ~= nil and not (v >= 1 and v <= max and v == math.floor(v)) then
    raise("%s: option '%s' must be an integer from 1 to %d", caller, name, max)
  end
end

local function list_params(opts, caller)
  opts = opts or {}
  for k, v in pairs(opts) do
    local want = LIST_OPTIONS[k]
    if not want or not want:find(type(v), 1, true) then
      raise("%s: %s", caller, want and ("option '" .. k .. "' must be a " .. want:gsub("|", " or "))
        or ("unknown option '" .. tostring(k) .. "'"))
    end
  end
  if opts.filter then query.check_filter(opts.filter) end
  local params = { filter = opts.filter, skip = opts.skip }
  if type(opts.sort) == "string" then params.sort = { [opts.sort] = "ASC" } else params.sort = opts.sort end
  params.fields = type(opts.fields) == "table" and table.concat(opts.fields, ",") or opts.fields
  return params
end

-- What each lookup sends and how its answer is read; shared by blocking and async calls.
local plans = {}

-- A read by id is a list filtered on the id: the form Envoke documents (a
-- `GET /v1/contacts/{id}` route is not confirmed anywhere).
function plans.get(self, id)
  local text = Client.id_text(id, "get")
  return { method = "GET", path = Contact.by_id_path(text), idempotent = true, client = self,
           key = "id", value = schema.normalize("id", text), finish = finish_list }
end

function plans.list(self, opts, caller)
  local params = list_params(opts, caller or "list")
  check_count(opts and opts.limit, "limit", 100, caller or "list")
  params.limit = opts and opts.limit
  return { method = "GET", path = query.path("/v1/contacts", params), idempotent = true, client = self,
           finish = finish_list }
end

function plans.find(self, key)
  local name, value
  if type(key) == "table" then
    for k, v in pairs(key) do
      if name or not KEYS[k] then raise("find takes exactly one of id, email, remote_id") end
      name, value = k, v
    end
  end
  if not name then raise("find takes exactly one of id, email, remote_id") end
  local ok, problem = schema.normalize(name, value)
  if not ok or value == "" then
    raise("find: %s %s", name, problem or "must not be empty")
  end
  local plan = plans.list(self, { filter = { [name] = value }, limit = 1 }, "find")
  plan.key, plan.value = name, ok
  return plan
end

local function finish_object(plan, data)
  if type(data) ~= "table" then
    return nil, errors.new("protocol", { message = plan.path .. " was answered with something other than an object" })
  end
  return data
end

function plans.ping(self)
  return { method = "GET", path = "/v1/settings", idempotent = true, client = self, finish = finish_object }
end

local function async_call(self, callback, plan)
  return self:engine():start(callback, plan)
end

--- One contact by its Envoke id.
-- @param id integer or numeric string
-- @return the contact, or nil, err (`kind = "not_found"` when there is none)
function Client:get(id) return self:execute(plans.get(self, id)) end

--- The first contact whose key field matches: `client:find{ email = "a@b.c" }`.
-- @tparam table key exactly one of `id`, `email`, `remote_id`
-- @return the contact, or nil, err (`kind = "not_found"` when none matches)
function Client:find(key) return self:execute(plans.find(self, key)) end

--- One page of contacts (`GET /v1/contacts`).
-- @tparam[opt] table opts `filter` (a Lua table, see README), `sort` (`{ id = "DESC" }` or a field name),
--   `fields` (list of names), `limit` (1..100, default 10), `skip`
-- @return a list of contacts, or nil, err
function Client:list(opts) return self:execute(plans.list(self, opts)) end

--- Checks the credentials with the cheapest call (`GET /v1/settings`).
-- @return the account's settings table, or nil, err (`kind = "auth"` for bad credentials)
function Client:ping() return self:execute(plans.ping(self)) end

--- Non-blocking `get`: a handle at once; `callback(contact, err, handle)` runs from `poll`.
function Client:get_async(id, callback) return async_call(self, callback, plans.get(self, id)) end
--- Non-blocking `find`.
function Client:find_async(key, callback) return async_call(self, callback, plans.find(self, key)) end
--- Non-blocking `list`.
function Client:list_async(opts, callback)
  if callback == nil and type(opts) == "function" then opts, callback = nil, opts end
  return async_call(self, callback, plans.list(self, opts))
end
--- Non-blocking `ping`.
function Client:ping_async(callback) return async_call(self, callback, plans.ping(self)) end

-- Keyset paging: a walk in id order that asks each time for ids after the last
-- one seen, so contacts inserted or deleted meanwhile never shift a page.
local function keyset_page(params, last)
  if not last then return params.filter end
  local after = { id = { ["$gt"] = last } }
  if not params.filter then return after end
  return { ["$and"] = { params.filter, after } }
end

-- With another sort only skip/limit can page: a live change may then shift it.
local function keyset_ok(sort)
  if sort == nil then return true end
  local n, dir = 0, nil
  for k, v in pairs(sort) do
    n = n + 1
    if k ~= "id" then return false end
    dir = v
  end
  return n == 1 and type(dir) == "string" and dir:upper() == "ASC"
end

local function with_id(fields)
  if fields == nil then return nil end
  for name in fields:gmatch("[^,%s]+") do
    if name == "id" then return fields end
  end
  return "id," .. fields
end

--- Every matching contact, paging by itself.
--    for c, err in client:contacts{ filter = { consent_status = "Express" } } do
--      if not c then error(err) end
--      print(c.email)
--    end
-- Without `sort` (or with `sort = { id = "ASC" }`) it walks by id
-- (`filter[id][$gt]=<last id>`, `sort[id]=ASC`), so contacts inserted or deleted
-- during the walk never make it skip or repeat another. With another sort it
-- pages with `skip`/`limit`, where a concurrent insert or delete can shift a page.
-- On a failure the loop yields `false, err` once and stops.
-- @tparam[opt] table opts as `list`, with `page_size` (1..100, default 100) instead of `limit`
-- @treturn function an iterator
function Client:contacts(opts)
  local params = list_params(opts, "contacts")
  if opts and opts.limit then raise("contacts: use page_size, not limit") end
  check_count(opts and opts.page_size, "page_size", 100, "contacts")
  local page_size = opts and opts.page_size or 100
  local keyset = keyset_ok(params.sort)
  local fields = keyset and with_id(params.fields) or params.fields
  local skip, last = params.skip or 0, nil
  local page, index, done = {}, 0, false
  local function next_page()
    local list, err
    if keyset then
      list, err = self:list{ filter = keyset_page(params, last), sort = { id = "ASC" }, fields = fields,
                             limit = page_size, skip = last == nil and params.skip or nil }
    else
      list, err = self:list{ filter = params.filter, sort = params.sort, fields = fields,
                             limit = page_size, skip = skip }
    end
    if not list then return nil, err end
    skip = skip + #list
    if list[1] then last = list[#list].id end
    return list
  end
  return function()
    if done then return nil end
    index = index + 1
    if page[index] == nil then
      if page.short then done = true return nil end
      local list, err = next_page()
      if not list then done = true return false, err end
      page, index = list, 1
      page.short = #list < page_size
      if list[1] == nil then done = true return nil end
    end
    return page[index]
  end
end

-- GET of a { "<id>": "<name>" } map, returned both ways; entries whose id
-- is not a valid id or whose name is not a string are left out.
local function name_map(self, path)
  local data, err = self:execute{ method = "GET", path = path, idempotent = true, finish = finish_object }
  if not data then return nil, err end
  local by_name, by_id = {}, {}
  for id, name in pairs(data) do
    local n = schema.normalize("id", id)
    if n and type(name) == "string" then
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

-- send, send_emails, custom_field_names (and their _async forms): envoke.resources.
require("envoke.resources").extend(Client)

return Client
