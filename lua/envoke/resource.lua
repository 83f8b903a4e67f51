--- Resource namespaces beyond contacts (`client.tags`, `client.subscriptions`,
-- `client.custom_fields`, `client.interests`, `client.hooks`, `client.messages`):
-- one generic namespace whose field rules come from a table
-- (`envoke.resources` holds the tables), over the client's request pipeline,
-- so retries, the rate limit, the logger, typed errors and every transport
-- (libcurl, cosockets inside nginx, the in-process transport) apply unchanged.
--
--    local tag = assert(client.tags:create{ name = "Attended 2025", group = "Events" })
--    for t, err in client.tags:each{ filter = { group = "Events" } } do print(t.id, t.name) end
--    local r = assert(client.tags:add_contacts(tag.id, { emails = attendees }))  -- any length
--
-- A mistake in the arguments (an unknown field, a field that cannot change, an
-- id that could not safely go into a path) raises at the caller's line before
-- anything is sent; failures of the world return `nil, err`.
-- @module envoke.resource
local core = require "envoke.core"
local errors = require "envoke.errors"
local query = require "envoke.query"
local schema = require "envoke.schema"

local raise = errors.raise

local resource = {}

--- At most this many contacts go in one bulk assignment request (Envoke's limit).
resource.BULK_MAX = 1000

-- Longest string id accepted in a path: far above any id Envoke hands out.
local MAX_STRING_ID = 64

-- A value in a message: 'plain' when printable, else escaped as Lua would.
local function quoted(v)
  v = tostring(v)
  if v:find("^[%w%p ]*$") and not v:find("'", 1, true) then return "'" .. v .. "'" end
  return (("%q"):format(v):gsub("\\\n", "\\n"))
end

-- How each kind of id is checked before it goes into a path (and when it comes
-- back in an answer): each returns the path text, or nil and a problem.
local id_checks = {}

-- Tags, subscriptions and custom fields have string ids. Only characters that
-- need no escaping and cannot change the path's shape pass: no '/', '?', '#',
-- '%', space or control byte, and neither "." nor "..".
function id_checks.string(v)
  if type(v) == "number" then return id_checks.integer(v) end
  if type(v) ~= "string" then return nil, "must be a string, got " .. type(v) end
  if v == "" or #v > MAX_STRING_ID or not v:find("^[%w_%-%.]+$") or v == "." or v == ".." then
    return nil, ("must be 1 to %d letters, digits, '_', '-' or '.' (and not '.' or '..'), got %s")
      :format(MAX_STRING_ID, quoted(v:sub(1, 80)))
  end
  return v
end

-- Contacts and messages: an integer 1..4294967295, as a number or digits.
function id_checks.integer(v)
  local n, why = schema.normalize("id", v)
  if not n then return nil, why end
  return ("%d"):format(n)
end

-- Hooks: 32 hexadecimal digits (Envoke answers them in lower case).
function id_checks.hex32(v)
  if type(v) ~= "string" or #v ~= 32 or not v:find("^%x+$") then
    return nil, "must be 32 hexadecimal digits, got " .. (type(v) == "string" and quoted(v:sub(1, 80)) or type(v))
  end
  return v:lower()
end

--- Checks an id of the given kind (`"string"`, `"integer"`, `"hex32"`).
-- @treturn string|nil the id as it goes into a path
-- @treturn string|nil the problem
-- @local
function resource.check_id(kind, v)
  return id_checks[kind](v)
end

-- A programmer's id: raises at the caller's line.
local function path_id(def, v, caller)
  local text, why = id_checks[def.id](v)
  if not text then raise("%s: id %s", caller, why) end
  return text
end

local function protocol(message)
  return nil, errors.new("protocol", { message = message })
end

-- ------------------------------------------------------------------------
-- Field rules
-- ------------------------------------------------------------------------

local LANGUAGES = {}
for _, l in ipairs(schema.fields.language.values) do LANGUAGES[l] = true end

local function text_problem(rule, v)
  if type(v) ~= "string" then return "must be a string, got " .. type(v) end
  local n = schema.utf8_len(v)
  if not n then return "is not valid UTF-8" end
  if rule.min and n < rule.min then
    return ("is too short (%d characters, minimum %d)"):format(n, rule.min)
  end
  if rule.max and n > rule.max then
    return ("is too long (%d characters, maximum %d)"):format(n, rule.max)
  end
end

local function email_problem(v)
  local ok, why = schema.normalize("email", v)
  if not ok then return why end
  if v == "" then return "must not be empty" end
end

-- A "First Last <email>" sender, as Envoke writes it.
local function sender_problem(v)
  local email = type(v) == "string" and v:match("^[^<>]-%s*<([^<>]+)>$")
  if not email or email_problem(email) then return "must be 'First Last <email@example.com>' or a sender id" end
end

-- Each checker returns a problem phrase, or nil when the value is fine.
local checkers = {}

function checkers.string(rule, v) return text_problem(rule, v) end

-- A name (string) or an id (integer), as Envoke's group and sender fields take them.
function checkers.name_or_id(rule, v)
  if type(v) == "number" then
    local _, why = schema.normalize("id", v)
    return why
  end
  local problem = text_problem(rule, v)
  if problem then return "must be a name or an id: " .. problem end
  if rule.format == "sender" and not v:find("^%d+$") then return sender_problem(v) end
end

function checkers.enum(rule, v)
  if type(v) ~= "string" or not rule.set[v] then
    return "must be one of " .. table.concat(rule.values, ", ") .. ", got "
      .. (type(v) == "string" and quoted(v) or type(v))
  end
end

function checkers.boolean(_, v)
  if type(v) ~= "boolean" then return "must be true or false, got " .. type(v) end
end

function checkers.id(_, v)
  local _, why = schema.normalize("id", v)
  return why
end

-- `{ en = "…", fr = "…" }`: text by language.
function checkers.languages(_, v)
  if type(v) ~= "table" then return "must be a table of language -> text, got " .. type(v) end
  for k, text in pairs(v) do
    if not LANGUAGES[k] then return "has an unknown language " .. quoted(k) end
    if type(text) ~= "string" or not schema.utf8_len(text) then return "." .. k .. " must be UTF-8 text" end
  end
end

-- A hook's filter: field -> plain value.
function checkers.conditions(_, v)
  if type(v) ~= "table" then return "must be a table of field -> value, got " .. type(v) end
  for k, x in pairs(v) do
    if type(k) ~= "string" or k == "" then return "keys must be field names" end
    local t = type(x)
    if t ~= "string" and t ~= "number" and t ~= "boolean" then
      return "." .. k .. " must be a string, number or boolean, got " .. t
    end
  end
end

function checkers.url(rule, v)
  local problem = text_problem(rule, v)
  if problem then return problem end
  if not v:find("^[hH][tT][tT][pP][sS]?://[^/%s]") or v:find("[%s%c]") then
    return "must be an http:// or https:// URL without spaces"
  end
end

function checkers.emails(_, v)
  if type(v) ~= "table" or not schema.is_array(v) or v[1] == nil then
    return "must be a non-empty list of email addresses"
  end
  for i, e in ipairs(v) do
    local problem = email_problem(e)
    if problem then return ("[%d] %s"):format(i, problem) end
  end
end

-- "YYYY-MM-DD HH:MM:SS", the form Envoke's v2 endpoints use.
function checkers.timestamp(_, v)
  local y, mo, d, h, mi, s = (type(v) == "string" and v or "")
    :match("^(%d%d%d%d)%-(%d%d)%-(%d%d) (%d%d):(%d%d):(%d%d)$")
  if not y or not schema.time.parse_datetime(("%s-%s-%sT%s:%s:%sZ"):format(y, mo, d, h, mi, s)) then
    return "must be a date and time 'YYYY-MM-DD HH:MM:SS'"
  end
end

--- Prepares a rules table: fills the sets of enum rules.
-- @local
function resource.rules(fields)
  for _, rule in pairs(fields) do
    if rule.values then
      rule.set = {}
      for _, v in ipairs(rule.values) do rule.set[v] = true end
    end
  end
  return fields
end

-- A value that clears a field on update: "" or JSON null (core.null).
local function clears(rule, v)
  return rule.clear and (v == "" or v == core.null)
end

--- Checks `fields` against the rules of `def` for a create or an update, and
-- returns the body to send (a copy). Raises at the caller's line on any problem.
-- @local
function resource.body(def, fields, op, caller)
  if type(fields) ~= "table" then raise("%s: fields must be a table, got %s", caller, type(fields)) end
  local body, any = {}, false
  for k, v in pairs(fields) do
    local rule = def.fields[k]
    if type(k) ~= "string" or (not rule and not def.readonly[k]) then
      raise("%s: unknown field %s", caller, quoted(k))
    end
    if def.readonly[k] then raise("%s: field '%s' is read-only", caller, k) end
    if rule.immutable and op == "update" then
      raise("%s: field '%s' cannot be changed after creation", caller, k)
    end
    if not clears(rule, v) then
      local problem = checkers[rule.type](rule, v)
      if problem then raise("%s: field '%s' %s", caller, k, problem) end
      if rule.nonblank and not v:find("%S") then raise("%s: field '%s' must not be blank", caller, k) end
    end
    body[k], any = v, true
  end
  if op == "create" then
    for name, rule in pairs(def.fields) do
      if rule.required and fields[name] == nil then raise("%s: field '%s' is required", caller, name) end
    end
  elseif not any then
    raise("%s: nothing to change (give at least one field)", caller)
  end
  if def.check_body then def.check_body(body, op, caller) end
  return body
end

--- Encodes a request body now, so that what JSON cannot hold raises at the caller's line.
-- @local
function resource.encode(body, caller)
  local ok, text = pcall(core.json_encode, body)
  if not ok then raise("%s: the body cannot be encoded as JSON: %s", caller, errors.reason(text)) end
  return text
end

-- ------------------------------------------------------------------------
-- Reading answers
-- ------------------------------------------------------------------------

local function is_object(v)
  return type(v) == "table" and (next(v) == nil or not schema.is_array(v))
end

-- An item of an answer: an object whose id (when it has one, or must have
-- one) is a valid id of its kind, so that it can go into a later path.
local function checked_item(def, item, where, id_optional)
  if not is_object(item) then return protocol(where .. " is not an object") end
  if item.id == nil and id_optional then return item end
  local _, why = id_checks[def.id](item.id)
  if why then return protocol(where .. ": its id " .. why) end
  -- Integer ids read as integers, whether Envoke sent "1234" or 1234.
  if def.id == "integer" then item.id = schema.normalize("id", item.id) end
  return item
end

--- A list answer: an array of items with valid ids, or a protocol error.
-- @local
function resource.finish_list(plan, data)
  if type(data) ~= "table" or (next(data) ~= nil and not schema.is_array(data)) then
    return protocol(plan.path .. " was answered with something other than an array")
  end
  local what = plan.def.item or "item"
  for i, item in ipairs(data) do
    local ok, err = checked_item(plan.def, item, ("%s %d of the list"):format(what, i), plan.trimmed)
    if not ok then return nil, err end
  end
  return data
end

local function finish_get(plan, data)
  if data == core.null or data == true or (type(data) == "table" and next(data) == nil) then
    return nil, errors.new("not_found", { message = ("no %s with id %s"):format(plan.def.item or "item", plan.id) })
  end
  return checked_item(plan.def, data, "the answer's " .. (plan.def.item or "item"))
end

-- A write's envelope: `success` true and the item in `result_data`.
local function finish_written(plan, data)
  if type(data) ~= "table" or data.success ~= true then
    return protocol("the answer to " .. plan.method .. " " .. plan.path .. " has no 'success': true")
  end
  return checked_item(plan.def, data.result_data, "the answer's result_data")
end

local function finish_deleted(plan, data)
  if data == true then return true end -- no body
  if type(data) ~= "table" or data.success ~= true then
    return protocol("the answer to DELETE " .. plan.path .. " has no 'success': true")
  end
  return true
end

-- Hooks answer a create with 201 and `{"id": "<32 hex>"}`, not the envelope.
local function finish_hook_created(plan, data)
  if type(data) ~= "table" then return protocol("the answer to a hook's creation is not an object") end
  local id, why = id_checks.hex32(data.id)
  if not id then return protocol("the answer to a hook's creation: its id " .. why) end
  local hook = { id = id }
  for k, v in pairs(plan.fields) do hook[k] = v end
  return hook
end

resource.finish = { list = resource.finish_list, get = finish_get, written = finish_written,
                    deleted = finish_deleted, hook_created = finish_hook_created }

-- ------------------------------------------------------------------------
-- List parameters
-- ------------------------------------------------------------------------

local function check_count(v, name, min, max, caller)
  if type(v) ~= "number" or v ~= math.floor(v) or v < min or v > max then
    raise("%s: option '%s' must be an integer from %d to %d", caller, name, min, max)
  end
end

local function sort_param(spec, v, caller)
  if type(v) == "string" then v = { [v] = "asc" } end
  if type(v) ~= "table" then raise("%s: option 'sort' must be a field name or { field = 'asc'|'desc' }", caller) end
  local out = {}
  for field, dir in pairs(v) do
    if not (spec.sorts and spec.sorts[field]) then raise("%s: cannot sort by %s", caller, quoted(field)) end
    dir = type(dir) == "string" and dir:lower()
    if dir ~= "asc" and dir ~= "desc" then raise("%s: sort.%s must be 'asc' or 'desc'", caller, field) end
    out[field] = dir
  end
  return out
end

local function filter_value(v, at, caller)
  local t = type(v)
  if t == "string" or t == "number" or t == "boolean" then return v end
  if t == "table" then
    local ne = v.ne
    if ne == nil then ne = v["(ne)"] end
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    if n == 1 and ne ~= nil and type(ne) ~= "table" then return { ["(ne)"] = filter_value(ne, at, caller) } end
  end
  raise("%s: %s must be a value or { ne = value }", caller, at)
end

-- Envoke's v2 filters: `filter[name]=x` (exact) and `filter[name][(ne)]=x`.
local function filter_param(spec, v, caller)
  if type(v) ~= "table" then raise("%s: option 'filter' must be a table of field -> value", caller) end
  local out = {}
  for field, value in pairs(v) do
    if not (spec.filters and spec.filters[field]) then raise("%s: cannot filter on %s", caller, quoted(field)) end
    out[field] = filter_value(value, "filter." .. field, caller)
  end
  return out
end

local function fields_param(v, caller)
  if type(v) == "table" then
    for i, name in ipairs(v) do
      if type(name) ~= "string" or not name:find("^[%w_%.]+$") then
        raise("%s: fields[%d] must be a field name", caller, i)
      end
    end
    v = table.concat(v, ",")
  end
  if type(v) ~= "string" or v == "" then raise("%s: option 'fields' must be a list of field names", caller) end
  return v
end

-- The query parameters of a list call. `paging` names the option that sets
-- the page size ("limit" for list, "page_size" for each).
local function list_params(def, opts, caller, paging)
  local spec = def.list
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then raise("%s: options must be a table, got %s", caller, type(opts)) end
  local params = {}
  for k, v in pairs(opts) do
    if k == paging and spec.max then
      check_count(v, k, 1, spec.max, caller)
      params.limit = v
    elseif k == "skip" and spec.max then
      check_count(v, k, 0, 2 ^ 31, caller)
      params.skip = v
    elseif k == "sort" then
      params.sort = sort_param(spec, v, caller)
    elseif k == "filter" and spec.filters then
      params.filter = filter_param(spec, v, caller)
    elseif k == "fields" and spec.fields then
      params.fields = fields_param(v, caller)
    elseif spec.params and spec.params[k] then
      local rule = spec.params[k]
      local problem = checkers[rule.type](rule, v)
      if problem then raise("%s: option '%s' %s", caller, k, problem) end
      params[k] = rule.wire and rule.wire[v] or v
    else
      raise("%s: unknown option %s", caller, quoted(k))
    end
  end
  return params
end

-- ------------------------------------------------------------------------
-- The namespace
-- ------------------------------------------------------------------------

--- The methods every namespace shares. Which of them a namespace offers is
-- in its table (`ops`); the others raise, saying why.
local Namespace = {}
resource.Namespace = Namespace

--- Makes the class of one namespace from its definition table.
-- @local
function resource.class(def)
  def.readonly = def.readonly or {}
  resource.rules(def.fields or {})
  resource.rules(def.get_params or {})
  if def.list then resource.rules(def.list.params or {}) end
  local class = setmetatable({ def = def }, { __index = Namespace })
  class.__index = class
  return class
end

--- A namespace object of `client`.
-- @local
function resource.new(client, class)
  return setmetatable({ client = client }, class)
end

local function offers(self, op, caller)
  local def = self.def
  if not def.ops[op] then
    raise("%s: %s", caller, def.missing and def.missing[op] or ("Envoke offers no " .. op .. " here"))
  end
  if self.client.closed then raise("client is closed") end
  return def
end

local function item_path(def, id)
  return def.path .. "/" .. id .. (def.suffix or "")
end

-- What each call sends and how its answer is read; shared by blocking and async forms.
local plans = {}

function plans.list(self, opts, caller, paging)
  local def = offers(self, "list", caller)
  local params = list_params(def, opts, caller, paging or "limit")
  return { method = "GET", path = query.path(def.path .. (def.suffix or ""), params), idempotent = true,
           def = def, trimmed = params.fields ~= nil, finish = resource.finish_list }
end

function plans.get(self, id, opts, caller)
  local def = offers(self, "get", caller)
  local text = path_id(def, id, caller)
  local params = {}
  if opts ~= nil then
    if type(opts) ~= "table" then raise("%s: options must be a table, got %s", caller, type(opts)) end
    for k, v in pairs(opts) do
      local rule = def.get_params and def.get_params[k]
      if not rule then raise("%s: unknown option %s", caller, quoted(k)) end
      local problem = checkers[rule.type](rule, v)
      if problem then raise("%s: option '%s' %s", caller, k, problem) end
      params[k] = v
    end
  end
  return { method = "GET", path = query.path(item_path(def, text), params), idempotent = true, def = def,
           id = text, expect = { "not_found" }, finish = finish_get }
end

function plans.create(self, fields, caller)
  local def = offers(self, "create", caller)
  local body = resource.body(def, fields, "create", caller)
  return { method = "POST", path = def.path .. (def.suffix or ""), body = resource.encode(body, caller),
           idempotent = false, def = def, fields = body, expect = { "duplicate" },
           finish = def.create_answer == "id" and finish_hook_created or finish_written }
end

function plans.update(self, id, fields, caller)
  local def = offers(self, "update", caller)
  local text = path_id(def, id, caller)
  local body = resource.body(def, fields, "update", caller)
  return { method = "PATCH", path = item_path(def, text), body = resource.encode(body, caller), idempotent = true,
           def = def, expect = { "not_found", "duplicate" }, finish = finish_written }
end

function plans.delete(self, id, caller)
  local def = offers(self, "delete", caller)
  return { method = "DELETE", path = item_path(def, path_id(def, id, caller)), idempotent = true, def = def,
           expect = { "not_found" }, finish = finish_deleted }
end

--- Runs a plan blocking; a namespace's `on_error` may refine the error.
-- @local
function resource.run(self, plan)
  local result, err = self.client:execute(plan)
  if err and plan.def and plan.def.on_error then plan.def.on_error(err) end
  return result, err
end

local function callback_of(callback)
  if callback ~= nil and type(callback) ~= "function" then
    raise("the callback must be a function, got %s", type(callback))
  end
  return callback
end

--- Starts a plan non-blocking; `callback(result, err, handle)` runs from `poll`.
-- @local
function resource.submit(self, plan, callback)
  callback = callback_of(callback)
  local on_error = plan.def and plan.def.on_error
  if on_error then
    local user = callback
    callback = function(result, err, handle)
      if err then on_error(err) end
      if user then return user(result, err, handle) end
    end
  end
  return self.client:engine():submit(plan, callback)
end

--- One page of items.
-- @tparam[opt] table opts `limit` (1..100; default 10 where Envoke pages), `skip`,
--   `sort` (a field name, or `{ name = "desc" }`), `filter` (`{ group = "Events" }`,
--   `{ group = { ne = "Archived" } }`), `fields` (a list of names), and the
--   namespace's own options (`type`, `group`, ...)
-- @return a list of items (plain tables), or nil, err
function Namespace:list(opts) return resource.run(self, plans.list(self, opts, self.def.name .. ":list")) end

--- One item by id.
-- @param id the item's id (a string id for tags, subscriptions and custom fields)
-- @tparam[opt] table opts the namespace's options (messages: `include_html = true`)
-- @return the item, or nil, err (`kind = "not_found"` when there is none)
function Namespace:get(id, opts) return resource.run(self, plans.get(self, id, opts, self.def.name .. ":get")) end

--- Creates an item; the fields are checked against the namespace's rules first.
-- @tparam table fields
-- @return the item as created (with its id), or nil, err
function Namespace:create(fields)
  return resource.run(self, plans.create(self, fields, self.def.name .. ":create"))
end

--- Changes an item (only the fields given).
-- @param id
-- @tparam table fields
-- @return the item as updated, or nil, err
function Namespace:update(id, fields)
  return resource.run(self, plans.update(self, id, fields, self.def.name .. ":update"))
end

--- Deletes an item.
-- @param id
-- @return true, or nil, err
function Namespace:delete(id) return resource.run(self, plans.delete(self, id, self.def.name .. ":delete")) end

--- Non-blocking `list`: a handle at once; `callback(items, err, handle)` runs from `poll`.
function Namespace:list_async(opts, callback)
  if callback == nil and type(opts) == "function" then opts, callback = nil, opts end -- list_async(callback)
  return resource.submit(self, plans.list(self, opts, self.def.name .. ":list_async"), callback)
end
--- Non-blocking `get`.
function Namespace:get_async(id, callback)
  return resource.submit(self, plans.get(self, id, nil, self.def.name .. ":get_async"), callback)
end
--- Non-blocking `create`.
function Namespace:create_async(fields, callback)
  return resource.submit(self, plans.create(self, fields, self.def.name .. ":create_async"), callback)
end
--- Non-blocking `update`.
function Namespace:update_async(id, fields, callback)
  return resource.submit(self, plans.update(self, id, fields, self.def.name .. ":update_async"), callback)
end
--- Non-blocking `delete`.
function Namespace:delete_async(id, callback)
  return resource.submit(self, plans.delete(self, id, self.def.name .. ":delete_async"), callback)
end

--- Every matching item, paging with `skip`/`limit` by itself.
--    for tag, err in client.tags:each{ sort = "name" } do
--      if not tag then error(err) end
--      print(tag.id, tag.name)
--    end
-- On a failure the loop yields `false, err` once and stops. Envoke's v2 lists
-- page by offset only: an item created or deleted during the walk can shift a page.
-- @tparam[opt] table opts as `list`, with `page_size` (1..100, default 100) instead of `limit`
-- @treturn function an iterator
function Namespace:each(opts)
  local caller = self.def.name .. ":each"
  local first = plans.list(self, opts, caller, "page_size") -- checks everything now
  local def = self.def
  local params = list_params(def, opts, caller, "page_size")
  -- Where Envoke pages, walk page by page; elsewhere one request answers all.
  local size = def.list.max and (params.limit or def.list.max) or nil
  local skip = params.skip or 0
  local page, index, done = {}, 0, false
  local short = false
  return function()
    if done then return nil end
    index = index + 1
    if page[index] == nil then
      if short then done = true return nil end
      local plan = first
      if size then
        params.limit, params.skip = size, skip
        plan = { method = "GET", path = query.path(def.path .. (def.suffix or ""), params), idempotent = true,
                 def = def, trimmed = first.trimmed, finish = resource.finish_list }
      end
      local list, err = resource.run(self, plan)
      if not list then done = true return false, err end
      page, index = list, 1
      short = not size or #list < size
      skip = skip + #list
      if list[1] == nil then done = true return nil end
    end
    return page[index]
  end
end

--- Every matching item in one list (see `each`).
-- @return a list of items, or nil, err
function Namespace:all(opts)
  local out = {}
  for item, err in self:each(opts) do
    if not item then return nil, err end
    out[#out + 1] = item
  end
  return out
end

-- ------------------------------------------------------------------------
-- Bulk assignment: contacts to a tag or a subscription
-- ------------------------------------------------------------------------

-- The identifiers of a bulk call: `{ ids = {...} }` or `{ emails = {...} }`.
local function bulk_items(who, caller)
  if type(who) ~= "table" then raise("%s: give { ids = {...} } or { emails = {...} }, got %s", caller, type(who)) end
  local key, list
  for k, v in pairs(who) do
    if (k ~= "ids" and k ~= "emails") or key then
      raise("%s: give exactly one of { ids = {...} } or { emails = {...} }", caller)
    end
    key, list = k, v
  end
  if not key then raise("%s: give exactly one of { ids = {...} } or { emails = {...} }", caller) end
  if type(list) ~= "table" or (next(list) ~= nil and not schema.is_array(list)) then
    raise("%s: %s must be a list", caller, key)
  end
  local out = {}
  for i, v in ipairs(list) do
    if key == "ids" then
      local n, why = schema.normalize("id", v)
      if not n then raise("%s: ids[%d] %s", caller, i, why) end
      out[i] = n
    else
      local problem = email_problem(v)
      if problem then raise("%s: emails[%d] %s", caller, i, problem) end
      out[i] = v
    end
  end
  return key == "ids" and "contact_ids" or "contact_emails", out
end

-- A chunk's answer: `{ processed, not_found }` from result_data.
local function finish_bulk(plan, data)
  if type(data) ~= "table" or data.success ~= true or type(data.result_data) ~= "table" then
    return protocol("the answer to " .. plan.method .. " " .. plan.path .. " has no 'success': true and result_data")
  end
  local rd = data.result_data
  local processed = rd.processed
  if processed ~= nil and type(processed) ~= "number" then return protocol("result_data.processed is not a number") end
  local missing = {}
  if rd.not_found ~= nil then
    if type(rd.not_found) ~= "table" then return protocol("result_data.not_found is not a list") end
    for i, v in ipairs(rd.not_found) do missing[i] = type(v) == "number" and ("%d"):format(v) or tostring(v) end
  end
  return { processed = processed and math.floor(processed) or #plan.items, not_found = missing }
end

local function bulk_plans(self, method, id, who, caller)
  local def = offers(self, "bulk", caller)
  local path = def.path .. "/" .. path_id(def, id, caller) .. "/contacts"
  local key, items = bulk_items(who, caller)
  local list = {}
  for first = 1, #items, resource.BULK_MAX do
    local chunk = {}
    for i = first, math.min(first + resource.BULK_MAX - 1, #items) do chunk[#chunk + 1] = items[i] end
    list[#list + 1] = { method = method, path = path, body = resource.encode({ [key] = chunk }, caller),
                        idempotent = true, def = def, items = chunk, key = key, expect = { "not_found" },
                        finish = finish_bulk }
  end
  return list
end

local function new_total()
  return { processed = 0, not_found = {}, failed = {}, requests = 0 }
end

-- Adds one chunk's outcome to the merged result; returns the chunk's error.
local function merge(total, plan, result, err)
  total.requests = total.requests + 1
  local d = err and err.details
  local part = result or (d and { processed = d.processed, not_found = d.not_found })
  if part then
    total.processed = total.processed + math.floor(part.processed or #plan.items)
    for _, v in ipairs(part.not_found or {}) do total.not_found[#total.not_found + 1] = v end
  end
  if d and d.failed then
    for _, f in ipairs(d.failed) do total.failed[#total.failed + 1] = f end
  elseif err then
    -- The request as a whole failed: every contact of it is accounted for as failed.
    local field = plan.key == "contact_ids" and "contact_id" or "contact_email"
    for _, v in ipairs(plan.items) do
      total.failed[#total.failed + 1] = { [field] = type(v) == "number" and ("%d"):format(v) or v,
                                          reason = tostring(err) }
    end
  end
  return err
end

-- The call's outcome: the merged result, or the first error with the merged result as err.result.
local function bulk_outcome(total, first_err)
  if not first_err then return total end
  first_err.result = total
  return nil, first_err
end

local function bulk_run(self, method, id, who, caller)
  local total, first_err = new_total(), nil
  for _, plan in ipairs(bulk_plans(self, method, id, who, caller)) do
    local err = merge(total, plan, resource.run(self, plan))
    first_err = first_err or err
  end
  return bulk_outcome(total, first_err)
end

--- A group of requests started together (a bulk call's chunks), with the
-- handle interface: `done()`, `wait(ms)`, `cancel()`, `result`, `err`.
-- @type Group
local Group = {}
Group.__index = Group

--- True once every request has finished (or the group was cancelled).
function Group:done() return self.state ~= "pending" end

--- Drives the client until the group finishes; returns its result, or nil, err.
-- @tparam[opt] number timeout_ms as `handle:wait`
function Group:wait(timeout_ms)
  local deadline = timeout_ms and core.now() + timeout_ms
  for _, h in ipairs(self.handles) do
    if self:done() then break end
    local left = deadline and math.max(0, deadline - core.now()) or nil
    local _, err = h:wait(left)
    if not h:done() then return nil, err end
  end
  return self.result, self.err
end

--- Cancels every request still pending; the callback never runs.
-- @treturn boolean true when something was still pending
function Group:cancel()
  if self:done() then return false end
  for _, h in ipairs(self.handles) do h:cancel() end
  self.state, self.result = "cancelled", nil
  self.err = errors.new("cancelled", { message = "the call was cancelled", result = self.total })
  return true
end

local function group_finished(self, group)
  group.state = "done"
  group.result, group.err = bulk_outcome(group.total, group.first_err)
  self.client:engine():run_callback(group)
end

local function bulk_async(self, method, id, who, callback, caller)
  callback = callback_of(callback)
  local list = bulk_plans(self, method, id, who, caller)
  local group = setmetatable({ state = "pending", handles = {}, total = new_total(), callback = callback,
                               left = #list }, Group)
  if #list == 0 then
    return self.client:engine():resolved(group.total, nil, callback)
  end
  for i, plan in ipairs(list) do
    group.handles[i] = resource.submit(self, plan, function(result, err)
      local failed = merge(group.total, plan, result, err)
      group.first_err = group.first_err or failed
      group.left = group.left - 1
      if group.left == 0 and group.state == "pending" then group_finished(self, group) end
    end)
  end
  return group
end

--- Adds contacts to this tag or subscription, in requests of at most 1,000
-- (Envoke's limit), merging the answers. Adding a contact twice is harmless.
--    local r, err = client.tags:add_contacts("42", { emails = { "a@example.com", "b@example.com" } })
--    -- r = { processed = 2, not_found = { "b@example.com" }, failed = {}, requests = 1 }
-- @param id the tag's or subscription's id
-- @tparam table who `{ ids = { 1234, ... } }` or `{ emails = { "a@example.com", ... } }`
-- @return `{ processed, not_found, failed, requests }`; or nil, err (the first
--   request's failure) with `err.result` the same merged table: `failed` then
--   lists `{ contact_id | contact_email, reason }` for every contact not assigned
function Namespace:add_contacts(id, who)
  return bulk_run(self, "POST", id, who, self.def.name .. ":add_contacts")
end

--- Removes contacts from this tag or subscription; as `add_contacts`.
function Namespace:remove_contacts(id, who)
  return bulk_run(self, "DELETE", id, who, self.def.name .. ":remove_contacts")
end

--- Non-blocking `add_contacts`: its chunks go out together; `callback(result, err, group)`
-- runs once all have finished. Returns a group with the handle interface.
function Namespace:add_contacts_async(id, who, callback)
  return bulk_async(self, "POST", id, who, callback, self.def.name .. ":add_contacts_async")
end

--- Non-blocking `remove_contacts`.
function Namespace:remove_contacts_async(id, who, callback)
  return bulk_async(self, "DELETE", id, who, callback, self.def.name .. ":remove_contacts_async")
end

resource.plans = plans
resource.checkers = checkers
resource.callback_of = callback_of

return resource
