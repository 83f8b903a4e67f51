--- A contact: fields read as plain values, chainable setters that validate at
-- once, and calls that send only what changed.
--
--    local c = client:contact{ email = "jane@example.com", first_name = "Jane" }
--    c:set("city", "Toronto"):interest("Newsletter", "Set"):consent("Express", "Signed up on the form")
--    local ok, err = c:save{ keyfield = "email" }
--    print(c.id, c.consent_status)
--
-- Setters raise on a bad field or value (a programmer error); calls that reach
-- the network return the contact (or true) on success and `nil, err` on failure.
-- @classmod envoke.contact
local errors = require "envoke.errors"
local query = require "envoke.query"
local schema = require "envoke.schema"

local Contact = {}

-- Private slots, in the array part: a field name is a string and cannot
-- collide with them, and a contact made with its slots as one array
-- constructor costs a third less than with table keys (a 7-node hash) on 5.4.
-- FIELDS is false while the server's answer is still raw JSON in RAW, and in
-- a new contact until something reads its fields (fields_of makes them).
-- SENT is the body of the last write, to tell what the server did not apply.
-- ID is an id known valid (the one the contact was made with, or the one the
-- last write named); it goes before FIELDS' id, which an answer may have set.
-- A slot never holds nil (false when unset), so plain indexing reads and
-- writes it without reaching the metatable (and costs less than rawget).
local CLIENT, FIELDS, RAW, ID, CHANGES, CLEAR, SENT = 1, 2, 3, 4, 5, 6, 7

local fail = errors.raise
local FIELD_SPECS = schema.fields

-- prefix .. id for a normalized id. PUC Lua makes an integer's text through
-- snprintf (about 1.2k instructions, on every write to a known contact), which
-- core.join_id skips; LuaJIT's concatenation is cheaper than a call into C.
local join_id = rawget(_G, "jit") and function(prefix, id) return prefix .. id end
  or require("envoke.core").join_id
local is_ascii = schema.is_ascii

-- Field -> maximum length, for the text fields whose only rules are UTF-8
-- and a length: an ASCII value within the length is valid without the
-- schema's checks (the usual set, done once per field per contact).
local PLAIN_TEXT = {}
for name, spec in pairs(FIELD_SPECS) do
  if spec.type == "string" and spec.max and not spec.readonly and not spec.format then PLAIN_TEXT[name] = spec.max end
end

local mt = {}

local fields_of

-- The methods a contact answers to (filled at the end of the file): the
-- module's other functions (new, plan, ...) are not reachable from a contact.
local METHODS = {}

local NO_CHANGES = {}

function mt.__index(self, key)
  local method = METHODS[key]
  if method ~= nil then return method end
  local changes = self[CHANGES]
  if changes then
    local change = changes[key]
    if change ~= nil and type(change) ~= "table" then return change end
  end
  return fields_of(self)[key]
end

-- `c.city = "Toronto"` is `c:set("city", "Toronto")`: validated and tracked.
function mt.__newindex(self, key, value)
  Contact.set(self, key, value)
end

function mt.__tostring(self)
  local f = fields_of(self)
  return ("envoke.contact (id %s, email %s)"):format(tostring(f.id), tostring(self.email))
end

-- Reads keep the shapes the server may answer either way: id as number or
-- string, custom_fields as {} or [].
local function from_json(data, null)
  local fields = {}
  for k, v in pairs(data) do
    if v ~= null then fields[k] = v end
  end
  if fields.id ~= nil then fields.id = schema.normalize("id", fields.id) or fields.id end
  if type(fields.custom_fields) ~= "table" then fields.custom_fields = {} end
  if type(fields.interests) ~= "table" then fields.interests = {} end
  if type(fields.autoresponders) ~= "table" then fields.autoresponders = {} end
  return fields
end

-- The fields as the server answered them. A write's answer stays raw JSON
-- until something reads a field: a bulk sync rarely does, and decoding a
-- contact costs more than the rest of a save together.
function fields_of(self)
  local f = self[FIELDS]
  if f then return f end
  local raw = self[RAW]
  if raw then
    local client = self[CLIENT]
    f = from_json(client.json.decode(raw), client.json.null)
    self[RAW] = false
  else -- a new contact made with an id alone: its fields table is made when read
    f = { id = self[ID] or nil }
  end
  self[FIELDS] = f
  return f
end

local function id_of(self)
  return self[ID] or fields_of(self).id
end

-- The id a request will carry. It may have come from a server's answer, so it
-- is checked again here: a hostile or broken answer must not steer a request
-- to another path or another contact.
-- @return an integer id, or nil (no id), or nil, err (an id that is not valid)
local MAX_ID = 4294967295
local math_type = math.type

-- Whether v is an id as normalized (an integer on 5.3+), checked without a call into the schema.
local is_id
if math_type then
  function is_id(v) return math_type(v) == "integer" and v >= 1 and v <= MAX_ID end
else
  function is_id(v) return type(v) == "number" and v >= 1 and v <= MAX_ID and v % 1 == 0 end
end

local function request_id(self, caller)
  local id = self[ID]
  if id then return id end
  id = fields_of(self).id
  if id == nil or is_id(id) then return id end
  local n = schema.normalize("id", id)
  if n then return n end
  return nil, errors.new("protocol", { sent = false, message =
    ("%s: the contact's id %s (from the server's answer) is not a valid Envoke id; nothing was sent")
      :format(caller, type(id) == "string" and ("%q"):format(id) or tostring(id)) })
end

-- Every slot is there from the start: a save that fills SENT, RAW and ID then
-- writes into the table as made instead of growing it (a rehash per save).
local function blank(client, fields)
  return setmetatable({ client, fields, false, false, false, false, false }, mt)
end

-- Fields the server owns (read-only) are taken as read: a contact made from
-- an export or from another contact's fields() keeps them and never sends them.
-- The id is checked all the same (a request's path is made from it): this
-- normalizes one given in another form than an integer, e.g. a string.
local function owned_id(v)
  if v == "" then return nil end
  local id, problem = schema.normalize("id", v)
  if not id then fail("contact field 'id' %s", problem) end
  return id
end

-- The pending changes, made at the first one: a contact read or just saved
-- often gets none (CHANGES is false until then).
local function pending(self)
  local changes = self[CHANGES]
  if changes then return changes end
  changes = {}
  self[CHANGES] = changes
  return changes
end

-- Records one pending change; the first makes the table with its key in
-- (growing an empty table by a key costs a resize).
local function put(self, name, value)
  local changes = self[CHANGES]
  if changes then changes[name] = value else self[CHANGES] = { [name] = value } end
end

-- A status only Envoke sets (Expired, a spam report) read back from Envoke is
-- kept as read: it cannot be sent, and neither can the record it belongs to.
local function keep_envoke_consent(self)
  local changes = pending(self)
  local status = schema.consent.canonical(changes.consent_status)
  if status and schema.consent.envoke_only[status] then
    local fields = fields_of(self)
    fields.consent_status, changes.consent_status = changes.consent_status, nil
    fields.consent_effective_date, changes.consent_effective_date = changes.consent_effective_date, nil
  end
end

--- A new contact (what `client:contact` returns). `fields.id` addresses an
-- existing contact; the other fields the server owns (`external_id`,
-- `consent_expiry`, `date_created`) are kept as read and never sent, so a
-- contact round-trips from `fields()` or an export; every other field goes
-- through `set`. It is `client:contact` itself (one call less per contact).
-- @local
function Contact.new(client, fields)
  if client.closed then fail("client is closed") end
  if fields == nil then return blank(client, false) end
  if type(fields) ~= "table" then fail("contact fields must be a table, got %s", type(fields)) end
  -- No fields table yet: fields_of makes it when read, from the id.
  local self = blank(client, false)
  local envoke_status
  for k, v in pairs(fields) do
    local spec = FIELD_SPECS[k]
    if spec and spec.readonly then
      if k == "id" then
        v = is_id(v) and v or owned_id(v)
        self[ID] = v or false
        if self[FIELDS] then self[FIELDS].id = v end
      else
        fields_of(self)[k] = v
      end
    elseif k == "consent_status" and schema.consent.envoke_only[schema.consent.canonical(v) or ""] then
      envoke_status = v
    else
      Contact.set(self, k, v)
    end
  end
  if envoke_status then
    put(self, "consent_status", envoke_status)
    keep_envoke_consent(self)
  end
  return self
end

--- A contact as the server answered it.
-- @local
function Contact.from_server(client, data)
  return blank(client, from_json(data, client.json.null))
end

-- Replaces the fields with the server's answer and forgets what was pending.
local function absorb(self, data)
  self[FIELDS] = from_json(data, self[CLIENT].json.null)
  self[SENT] = false
  self[RAW] = false
  self[ID] = false
  self[CHANGES] = false
  self[CLEAR] = false
end

-- With the client's `on_overlong = "truncate"`, a text longer than its field
-- allows is cut to the limit (the logger is told) instead of refused.
local function fit(self, name, value)
  local client = self and self[CLIENT]
  if not client or client.on_overlong ~= "truncate" or type(value) ~= "string" then return value end
  local spec = schema.field(name)
  local n = spec and spec.max and schema.utf8_len(value)
  if not n or n <= spec.max then return value end
  if client.logger then
    client:log{ event = "truncated", field = name, characters = n, max = spec.max }
  end
  return schema.utf8_prefix(value, spec.max)
end

local function check(name, value, self)
  local v, problem = schema.check(name, value)
  if v == nil then
    local cut = fit(self, name, value) -- only a refused value can need it
    if cut ~= value then v, problem = schema.check(name, cut) end
    if v == nil then fail("contact field '%s' %s", tostring(name), problem) end
  end
  return v
end

-- Merges a map of name-or-id -> action into the pending changes of a field.
local function merge_actions(self, field, map)
  local changes = pending(self)
  local actions = changes[field] or {}
  for k, action in pairs(map) do actions[k] = action end
  changes[field] = actions
end

--- Sets one field, or several from a table: `c:set("city", "Toronto")`, `c:set{ city = "Toronto" }`.
-- Validates at once and raises naming the field and the problem: unknown field,
-- wrong type, too long (characters), value not allowed, malformed date, read-only.
-- A blank string changes nothing (the API ignores blanks): use `clear` to empty a field.
-- `interests`, `autoresponders` and `custom_fields` take their whole-table forms here.
-- @return self
function Contact:set(name, value)
  local max = PLAIN_TEXT[name]
  if max and type(value) == "string" and #value <= max and is_ascii(value) then
    if value == "" then return self end
    local changes = self[CHANGES] -- put(), inline: the usual setter call
    if changes then changes[name] = value else self[CHANGES] = { [name] = value } end
    return self
  end
  if type(name) == "table" and value == nil then
    for k, v in pairs(name) do Contact.set(self, k, v) end
    return self
  end
  if type(name) ~= "string" then fail("contact field names must be strings, got %s", type(name)) end
  if value == nil then fail("contact field '%s' needs a value (use clear to empty it)", name) end
  local v = check(name, value, self)
  local spec = FIELD_SPECS[name]
  if not spec then
    return self:custom_field(name:sub(#"custom_fields." + 1), v) -- check() let only these through
  elseif spec.type == "interests" or spec.type == "autoresponders" then
    local map = {}
    for _, change in ipairs(schema.changes(v)) do map[change.key] = change.action end
    merge_actions(self, name, map)
  elseif spec.type == "custom_fields" then
    for k, fv in pairs(v) do self:custom_field(k, fv) end
  elseif v ~= "" then
    put(self, name, v)
  end
  return self
end

--- Empties a field on the next save (sends `""` with `write_empty_values=1`).
-- @tparam string name a field name or `custom_fields.<name>`
-- @return self
function Contact:clear(name)
  if type(name) ~= "string" then fail("contact field names must be strings, got %s", type(name)) end
  local spec = schema.field(name)
  if not spec then fail("contact field '%s' is an unknown field", name) end
  if spec.readonly then fail("contact field '%s' is read-only", name) end
  if spec.type ~= "string" and spec.type ~= "enum" and spec.type ~= "datetime" then
    fail("contact field '%s' cannot be cleared (only text fields can)", name)
  end
  local custom = name:match("^custom_fields%.(.+)$")
  if custom then
    local changes = pending(self)
    changes.custom_fields = changes.custom_fields or {}
    changes.custom_fields[custom] = ""
  else
    put(self, name, "")
  end
  self[CLEAR] = true
  return self
end

local function interest_key(key, what)
  if type(key) == "number" then
    local id, problem = schema.normalize("id", key)
    if not id then fail("%s id %s", what, problem) end
    return ("%d"):format(id)
  end
  if type(key) ~= "string" or key == "" then
    fail("%s must be named by a non-empty string or an id, got %s", what, type(key))
  end
  return key
end

-- Validates one name-or-id -> action change of interests or autoresponders
-- and adds it to what the next save sends.
local function add_action(self, field, key, action)
  merge_actions(self, field, check(field, { [key] = action or "Set" }))
  return self
end

--- Sets or unsets a tag, subscription or mandatory consent, by name or id.
-- @param name interest name or id
-- @tparam[opt="Set"] string action `Set` or `Unset` (any case)
-- @return self
function Contact:interest(name, action)
  return add_action(self, "interests", interest_key(name, "interest"), action)
end

--- Sets or unsets the account's mandatory consent (the interest "Mandatory consent").
-- @tparam[opt="Set"] string action
-- @return self
function Contact:mandatory_consent(action)
  return add_action(self, "interests", "Mandatory consent", action)
end

--- Sets, unsets or dequeues a nurture sequence, by name or id.
-- Envoke sets nurtures only on contacts whose consent allows sending.
-- @param name nurture name or id
-- @tparam[opt="Set"] string action `Set`, `Unset` or `Dequeue`
-- @return self
function Contact:autoresponder(name, action)
  return add_action(self, "autoresponders", interest_key(name, "autoresponder"), action)
end

--- Sets a custom field (all custom field values are strings, dates too).
-- @return self
function Contact:custom_field(name, value)
  if type(name) ~= "string" or name == "" then
    fail("custom field names must be non-empty strings, got %s", type(name))
  end
  if not schema.utf8_len(name) then fail("custom field name is not valid UTF-8") end
  local v = check("custom_fields." .. name, value, self)
  if v ~= "" then
    local changes = pending(self)
    changes.custom_fields = changes.custom_fields or {}
    changes.custom_fields[name] = v
  end
  return self
end

--- Records consent. A sendable status (Express, any Implied) needs a
-- description: without one this raises before anything is sent.
-- @tparam string status any spelling the API accepts, any case
-- @tparam[opt] string description why the contact consented
-- @tparam[opt] table opts `effective_date` (RFC 3339; starts a new consent record),
--   `force_downgrade` (allow a lower status than the current one)
-- @return self
function Contact:consent(status, description, opts)
  local spelled = check("consent_status", status)
  local changes = pending(self)
  if schema.consent.sendable[schema.consent.canonical(spelled)] and (description == nil or description == "") then
    fail("consent '%s' needs a description (required for every sendable status)", spelled)
  end
  if description ~= nil then changes.consent_description = check("consent_description", description, self) end
  changes.consent_status = spelled
  if opts ~= nil then
    if type(opts) ~= "table" then fail("consent options must be a table, got %s", type(opts)) end
    for k, v in pairs(opts) do
      if k == "effective_date" then
        changes.consent_effective_date = check("consent_effective_date", v)
      elseif k == "force_downgrade" then
        changes.consent_force_downgrade = check("consent_force_downgrade", v)
      else
        fail("unknown consent option '%s'", tostring(k))
      end
    end
  end
  return self
end

--- What the next save would send, as a table (a copy).
-- @treturn table field -> value
function Contact:changes()
  local out = {}
  for k, v in pairs(self[CHANGES] or NO_CHANGES) do
    if type(v) == "table" then
      local copy = {}
      for ck, cv in pairs(v) do copy[ck] = cv end
      v = copy
    end
    out[k] = v
  end
  return out
end

--- The fields the last write asked for that the server's answer does not
-- show, e.g. `{ "consent_status" }` for a refused downgrade or
-- `{ "autoresponders" }` for a nurture skipped for lack of consent (Envoke
-- answers both with a 200). Empty after a write that applied everything, and
-- before any write.
-- @treturn table sorted field names
function Contact:unapplied()
  local sent = self[SENT]
  if not sent then return {} end
  return require("envoke.unapplied").fields(sent, fields_of(self))
end

--- The fields as the server last answered them (a copy, for printing or export).
function Contact:fields()
  local out = {}
  for k, v in pairs(fields_of(self)) do out[k] = v end
  return out
end

-- The rules a request must meet that no single setter can see.
local function check_request(changes)
  local status = changes.consent_status
  if status and schema.consent.sendable[schema.consent.canonical(status)] and not changes.consent_description then
    fail("consent '%s' needs a description (required for every sendable status)", status)
  end
  if changes.consent_effective_date and not status then
    fail("contact field 'consent_effective_date' is only accepted together with consent_status")
  end
end

local SAVE_OPTIONS = { keyfield = { id = true, email = true, remote_id = true } }
local NO_OPTIONS = {}

local function check_opts(opts, caller)
  if opts == nil then return NO_OPTIONS end
  if type(opts) ~= "table" then fail("%s options must be a table, got %s", caller, type(opts)) end
  for k, v in pairs(opts) do
    local allowed = SAVE_OPTIONS[k]
    if not allowed then fail("%s: unknown option '%s'", caller, tostring(k)) end
    if not allowed[v] then
      fail("%s: option 'keyfield' must be id, email or remote_id, got %s", caller, tostring(v))
    end
  end
  return opts
end

local function validation(message)
  return nil, nil, errors.new("validation", { message = message })
end

-- Takes in the result_data of a write envelope (its raw JSON, see Client:outcome).
-- As absorb, from the raw JSON of a contact; the id is kept when the request named it.
local function finish_write(plan, raw)
  local self = plan.contact
  self[SENT] = plan.body or false
  self[FIELDS] = false
  self[RAW] = raw
  self[ID] = plan.id or false
  self[CHANGES] = false
  self[CLEAR] = false
  return self
end

local function finish_delete()
  return true
end

--- A list answer's items, when it is an array of objects; anything else is the server's fault.
-- @local
function Contact.list_items(data)
  if type(data) ~= "table" or (next(data) ~= nil and not schema.is_array(data)) then
    return nil, errors.new("protocol", { message = "a list was answered with something other than an array" })
  end
  for i, item in ipairs(data) do
    if type(item) ~= "table" or (next(item) ~= nil and schema.is_array(item)) then
      return nil, errors.new("protocol", { message = ("item %d of a list answer is not a contact object"):format(i) })
    end
  end
  return data
end

local function same_key(a, b)
  if type(a) == "string" and type(b) == "string" then return a:lower() == b:lower() end
  return a == b
end

--- The first item of a list filtered on `key = value`: not_found when there is
-- none, protocol when the server answered a contact that does not match.
-- @local
function Contact.matching(items, key, value)
  local item = items[1]
  if item == nil then
    return nil, errors.new("not_found", { message = ("no contact with %s %s"):format(key, tostring(value)) })
  end
  local got = item[key]
  if key == "id" then got = schema.normalize("id", got) end
  if not same_key(got, value) then
    return nil, errors.new("protocol", { message = ("asked for the contact with %s %s, the server answered another")
      :format(key, tostring(value)) })
  end
  return item
end

--- The documented read of one contact: the list filtered on its id.
-- @local
function Contact.by_id_path(id_text)
  return query.path("/v1/contacts", { filter = { id = id_text }, limit = 1 })
end

local function finish_reload(plan, data)
  local items, err = Contact.list_items(data)
  if not items then return nil, err end
  local item, missing = Contact.matching(items, "id", schema.normalize("id", plan.id))
  if not item then return nil, missing end
  absorb(plan.contact, item)
  return plan.contact
end

local NO_PARAMS = {}

-- The body of a write and its query parameters; nil when nothing changed.
-- The pending changes are the body itself: a success drops them (the next
-- change makes a fresh table), a failure keeps them for the next try.
local function request_parts(self)
  local changes = self[CHANGES]
  if not changes or next(changes) == nil then return nil end
  -- Only the consent fields have rules across fields.
  if changes.consent_status or changes.consent_effective_date then check_request(changes) end
  if self[CLEAR] then return changes, { write_empty_values = 1 } end
  return changes, NO_PARAMS
end

-- What a 400 may mean, by request: only an insert can hit an existing email,
-- only a request that names an existing contact can find it missing.
local EXPECT_INSERT, EXPECT_WRITE, EXPECT_DELETE = { "duplicate" }, { "not_found", "duplicate" }, { "not_found" }

-- A write plan holds only what differs per call; what every plan of its kind
-- shares is reached through the metatable (a save makes a table of 4 fields, not 9).
local function write_kind(method, idempotent, expect, headers)
  return { __index = { method = method, idempotent = idempotent, envelope = true, finish = finish_write,
                       finish_never_raises = true, expect = expect, headers = headers } }
end
-- The kinds of save, insert and upsert; with `once`, all sent at most once. An
-- insert is never retried once it may have left (it could make a duplicate).
local function write_kinds(once, insert_headers)
  return { save = write_kind("PATCH", not once, EXPECT_WRITE),
           insert = write_kind("POST", false, EXPECT_INSERT, insert_headers),
           upsert = write_kind("POST", not once, EXPECT_WRITE) }
end
-- The kinds of the blocking and `*_async` writes.
local WRITES = write_kinds(false)

--- Write kinds the engine sends at most once, for `envoke.bulk`, which retries
-- writes itself (it knows when a failed one may have been applied); an insert
-- carries `insert_headers`. Passed to `Contact.plan`.
-- @local
function Contact.once_kinds(insert_headers)
  return write_kinds(true, insert_headers)
end

-- `plan`: a finished plan to fill again (a bulk run reuses its jobs' plans),
-- or nil for a new one. A plan filled again holds its kind's fields as its
-- own: the engine reads them on every send, each a lookup through the metatable.
local function write_plan(self, kind, path, params, body, id, plan)
  if params ~= NO_PARAMS then path = query.path(path, params) end
  if not plan then return setmetatable({ path = path, body = body, contact = self, id = id }, kind) end
  if plan.kind ~= kind then
    for k, v in pairs(kind.__index) do plan[k] = v end
    plan.kind = kind
  end
  plan.path = path
  plan.body = body
  plan.contact = self
  plan.id = id
  return plan
end

-- What each call sends; a plan, or (nil, result, err) when nothing needs sending.
local plans = {}

function plans.save(self, opts, kinds, plan)
  if opts ~= nil then opts = check_opts(opts, "save") else opts = NO_OPTIONS end
  local body, params = request_parts(self)
  if not body then return nil, self end
  local id, bad = self[ID], nil
  if not id then id, bad = request_id(self, "save") end
  if bad then return nil, nil, bad end
  if id and (opts.keyfield == nil or opts.keyfield == "id") then
    return write_plan(self, (kinds or WRITES).save, join_id("/v1/contacts/", id), params, body, id, plan)
  end
  local keyfield = opts.keyfield or "email"
  if keyfield == "id" then return validation("save: keyfield 'id', but the contact has no id yet") end
  local key = self[keyfield]
  if key == nil or key == "" then
    return validation(("save: keyfield '%s', but the contact has no %s"):format(keyfield, keyfield))
  end
  body[keyfield] = key
  params = { keyfield = keyfield, write_empty_values = params.write_empty_values }
  return write_plan(self, (kinds or WRITES).save, "/v1/contacts", params, body, nil, plan)
end

function plans.insert(self, _, kinds, plan)
  local body, params = request_parts(self)
  if not body or not body.email then return validation("insert: contact field 'email' is required") end
  -- Not idempotent: a retried insert could create a duplicate, so it is
  -- retried only when it provably never reached the server.
  return write_plan(self, (kinds or WRITES).insert, "/v1/contacts", params, body, nil, plan)
end

-- An upsert is keyed by its keyfield alone: email unless told otherwise (the
-- id only with keyfield = "id", or when the contact has nothing else), so a
-- contact deleted in Envoke since it was read is created again, not refused.
local function upsert_keyfield(self, opts)
  if opts.keyfield then return opts.keyfield end
  local email = self.email
  if (email == nil or email == "") and id_of(self) ~= nil then return "id" end
  return "email"
end

function plans.upsert(self, opts, kinds, plan)
  opts = check_opts(opts, "upsert")
  local body, params = request_parts(self)
  -- A copy: the key added below must not stay in the pending changes.
  local copy = {}
  for k, v in pairs(body or NO_OPTIONS) do copy[k] = v end
  body = copy
  params = { write_empty_values = params and params.write_empty_values, upsert = 1, keyfield = opts.keyfield }
  local keyfield = upsert_keyfield(self, opts)
  if keyfield == "id" then
    local id, bad = request_id(self, "upsert")
    if bad then return nil, nil, bad end
    if not id then return validation("upsert: keyfield 'id', but the contact has no id") end
    body.id = id
  else
    local key = self[keyfield]
    if key == nil or key == "" then
      if keyfield == "email" then return validation("upsert: the contact needs an email (or give a keyfield)") end
      return validation(("upsert: keyfield '%s', but the contact has no %s"):format(keyfield, keyfield))
    end
    body[keyfield] = key
  end
  return write_plan(self, (kinds or WRITES).upsert, "/v1/contacts", params, body, nil, plan)
end

local function require_id(self, caller)
  local id, bad = request_id(self, caller)
  if id then return ("%d"):format(id) end
  return nil, bad or errors.new("validation", { message = caller .. ": the contact has no id (load or save it first)" })
end

function plans.delete(self)
  local id, err = require_id(self, "delete")
  if not id then return nil, nil, err end
  return { method = "DELETE", path = "/v1/contacts/" .. id, idempotent = true, contact = self, finish = finish_delete,
           expect = EXPECT_DELETE }
end

function plans.reload(self)
  local id, err = require_id(self, "reload")
  if not id then return nil, nil, err end
  return { method = "GET", path = Contact.by_id_path(id), idempotent = true, contact = self, id = id,
           finish = finish_reload }
end

--- The plan of a call (for `envoke.bulk`): a plan, or nil, result, err.
-- `kinds` (from `Contact.once_kinds`) replaces the usual kinds of write.
-- @local
function Contact.plan(self, op, opts, kinds)
  return plans[op](self, opts, kinds)
end

--- The function that plans `op` (save, insert or upsert): `planner(contact, opts, kinds, plan)`
-- is `Contact.plan(contact, op, opts, kinds)`, for a loop that plans one op many times;
-- `plan`, if given, is a finished plan of the loop's own, filled again instead of a new table.
-- @local
function Contact.planner(op)
  return plans[op]
end

local function run(self, plan, result, err)
  if not plan then return result, err end
  return self[CLIENT]:execute(plan)
end

local function run_async(self, callback, plan, result, err)
  return self[CLIENT]:engine():start(callback, plan, result, err)
end

-- `c:save_async(cb)` as well as `c:save_async(nil, cb)`: no placeholder needed.
local function opts_or_callback(opts, callback)
  if callback == nil and type(opts) == "function" then return nil, opts end
  return opts, callback
end

--- Updates the contact (PATCH), sending only what changed since it was
-- loaded or last saved. The key is the id when known; else `opts.keyfield`
-- (`email` by default, or `remote_id`) from the contact's fields.
-- With nothing changed, nothing is sent. Retried on failures that allow it.
-- @tparam[opt] table opts `keyfield` = `id` | `email` | `remote_id`
-- @return self, or nil, err
function Contact:save(opts) return run(self, plans.save(self, opts)) end

--- Creates the contact (POST). `email` is required. Retried only when the
-- request provably never reached the server (a retried insert could duplicate).
-- @return self, or nil, err (`kind = "duplicate"` when the email exists)
function Contact:insert(opts)
  -- An insert has no key: a keyfield here would be silently meaningless.
  if opts ~= nil then fail("insert takes no options (an insert has no key; use upsert{ keyfield = ... })") end
  return run(self, plans.insert(self))
end

--- Creates the contact, or updates the one that matches its key (POST ?upsert=1).
-- An update changes only the fields sent and adds tags; it never drops any.
-- @tparam[opt] table opts `keyfield` = `id` | `email` | `remote_id`
-- @return self, or nil, err
function Contact:upsert(opts) return run(self, plans.upsert(self, opts)) end

--- Deletes the contact (it needs an id). Envoke refuses to delete contacts
-- whose consent is Revoked or a spam status.
-- @return true, or nil, err
function Contact:delete() return run(self, plans.delete(self)) end

--- Reads the contact again by id; unsaved changes are dropped.
-- @return self, or nil, err
function Contact:reload() return run(self, plans.reload(self)) end

--- Non-blocking `save`: returns a handle at once; `client:poll` drives it and
-- then calls `callback(result, err, handle)`. See `envoke.async`.
function Contact:save_async(opts, callback)
  opts, callback = opts_or_callback(opts, callback)
  return run_async(self, callback, plans.save(self, opts))
end
--- Non-blocking `insert`.
function Contact:insert_async(callback) return run_async(self, callback, plans.insert(self)) end
--- Non-blocking `upsert`.
function Contact:upsert_async(opts, callback)
  opts, callback = opts_or_callback(opts, callback)
  return run_async(self, callback, plans.upsert(self, opts))
end
--- Non-blocking `delete`.
function Contact:delete_async(callback) return run_async(self, callback, plans.delete(self)) end
--- Non-blocking `reload`.
function Contact:reload_async(callback) return run_async(self, callback, plans.reload(self)) end

--- The metatable of contact objects (to recognise them).
-- @local
Contact.metatable = mt

for _, name in ipairs{ "set", "clear", "interest", "mandatory_consent", "autoresponder", "custom_field",
                       "consent", "changes", "unapplied", "fields", "save", "insert", "upsert", "delete",
                       "reload", "save_async", "insert_async", "upsert_async", "delete_async", "reload_async" } do
  METHODS[name] = Contact[name]
end

return Contact
