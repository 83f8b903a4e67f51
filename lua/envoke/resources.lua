--- Everything of Envoke beyond contacts, as the client offers it
-- (docs/envoke-api.md §8): the namespaces' field rules, and the calls that are
-- not a namespace of items (sending, the legacy SendEmails call, the v1
-- custom field names, reports).
--
--    client.tags, client.subscriptions, client.custom_fields   -- v2: list/each/get/create/update/delete
--    client.tags:add_contacts(id, { emails = {...} })           -- and remove_contacts, on subscriptions too
--    client.interests:list{ type = "tag" }                      -- v2 interests (client:interests() is v1)
--    client.hooks                                               -- list/get/create/delete
--    client.messages                                            -- v2: list/get/create/update, send, cancel
--    client.reports:email_activity{ message_id = 1234 }
--    client:send{ ... }, client:send_emails{ ... }, client:custom_field_names()
--
-- Every call has an `_async` form taking a callback last.
-- @module envoke.resources
local core = require "envoke.core"
local errors = require "envoke.errors"
local query = require "envoke.query"
local resource = require "envoke.resource"
local schema = require "envoke.schema"

local raise = errors.raise
local checkers = resource.checkers

local resources = {}

local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

--- Envoke's hook types (docs/envoke-api.md §8).
resources.HOOK_TYPES = {
  "new_contact", "consent_change", "submission", "form_submission", "preference_page_submission",
  "api_submission", "import_submission", "ui_submission", "email_send", "email_open", "email_click",
  "email_autoresponder_send", "new_lead", "passed_to_sales", "lead_update", "new_opportunity", "new_sale",
}

--- The fields of a custom field's `field_type`.
resources.FIELD_TYPES = { "text", "note", "date", "url" }

--- The statuses a message can have.
resources.MESSAGE_STATUSES = { "Draft", "Scheduled", "AB test in progress", "Queuing", "Sending", "Nurture", "Sent" }

local V2_READONLY = { id = true, external_id = true }

-- Tags and subscriptions share most of their rules.
local function interest_fields(extra)
  local fields = {
    name = { type = "string", min = 1, max = 255, required = true, nonblank = true },
    group = { type = "name_or_id", min = 1, max = 255, clear = true },
    description = { type = "string", max = 65535 },
    display_names = { type = "languages" },
  }
  for k, v in pairs(extra or {}) do fields[k] = v end
  return fields
end

local defs = {}

defs.tags = {
  name = "tags", item = "tag", path = "/v2/tags", id = "string", readonly = V2_READONLY,
  ops = { list = true, get = true, create = true, update = true, delete = true, bulk = true },
  fields = interest_fields(),
  list = { max = 100, filters = set{ "id", "name", "external_id", "group", "description" }, sorts = set{ "name" },
           fields = true },
}

defs.subscriptions = {
  name = "subscriptions", item = "subscription", path = "/v2/subscriptions", id = "string", readonly = V2_READONLY,
  ops = { list = true, get = true, create = true, update = true, delete = true, bulk = true },
  fields = interest_fields{
    prefpage_access = { type = "enum", values = { "public", "private" } },
    display_descriptions = { type = "languages" },
  },
  list = { max = 100, filters = set{ "id", "name", "external_id", "group", "prefpage_access" }, sorts = set{ "name" },
           fields = true },
}

defs.custom_fields = {
  name = "custom_fields", item = "custom field", path = "/v2/customfields", id = "string", readonly = { id = true },
  ops = { list = true, get = true, create = true, update = true, delete = true },
  fields = {
    name = { type = "string", min = 1, max = 255, required = true, nonblank = true },
    field_type = { type = "enum", values = resources.FIELD_TYPES, required = true, immutable = true },
    description = { type = "string", max = 65535 },
  },
  list = { max = 100, filters = set{ "id", "name", "field_type", "description" }, sorts = set{ "name", "field_type" },
           fields = true },
}

-- v2 interests: one list of tags and subscriptions. Envoke's page shows no
-- paging for it, so one request answers every one.
defs.interests = {
  name = "interests", item = "interest", path = "/v2/interests", id = "string",
  ops = { list = true },
  missing = { get = "v2 interests can only be listed (use client.tags or client.subscriptions)" },
  list = { params = {
    type = { type = "enum", values = { "tag", "subscription" } },
    group = { type = "string", min = 1, max = 255 },
  } },
}

defs.hooks = {
  name = "hooks", item = "hook", path = "/v1/hooks", suffix = ".json", id = "hex32", readonly = { id = true },
  ops = { list = true, get = true, create = true, delete = true },
  missing = { update = "Envoke's hooks cannot be changed: delete the hook and create another" },
  create_answer = "id",
  fields = {
    type = { type = "enum", values = resources.HOOK_TYPES, required = true },
    url = { type = "url", max = 2048, required = true },
    filter = { type = "conditions" },
  },
  list = { max = 100000, fields = true, params = { type = { type = "enum", values = resources.HOOK_TYPES } } },
}

-- A hook that exists already: Envoke answers 400 with its id in result_data.
function defs.hooks.on_error(err)
  local existing = err.status == 400 and err.details and err.details.id
  local id = existing and resource.check_id("hex32", existing)
  if id then
    err.kind = "duplicate"
    err.existing_id = id
  end
end

local MESSAGE_READONLY = set{ "id", "external_id", "preview_url", "create_time", "modified_time", "status",
                              "send_time" }

defs.messages = {
  name = "messages", item = "message", path = "/v2/messages", id = "integer", readonly = MESSAGE_READONLY,
  ops = { list = true, get = true, create = true, update = true },
  missing = { delete = "Envoke's messages API has no delete" },
  fields = {
    name = { type = "string", min = 3, max = 100, required = true },
    group = { type = "name_or_id", min = 1, max = 255 },
    sender = { type = "name_or_id", min = 1, max = 255, format = "sender" },
    subject = { type = "string", min = 6, max = 120 },
    language = { type = "enum", values = { "en", "fr" } },
    html = { type = "string" },
    template_id = { type = "id" },
    recipient_subscription = { type = "name_or_id", min = 1, max = 255, clear = true },
    recipient_tag = { type = "name_or_id", min = 1, max = 255, clear = true },
    recipient_segment = { type = "name_or_id", min = 1, max = 255, clear = true },
    publish_archive = { type = "boolean" },
    utm_tag_links = { type = "boolean" },
  },
  get_params = { include_html = { type = "boolean" } },
  list = { max = 100, fields = true,
           filters = set{ "id", "name", "group", "status", "subject", "language", "sender" },
           sorts = set{ "id", "name", "create_time", "modified_time", "send_time" } },
}

-- Envoke needs the content of a new message: html or a template, not both.
function defs.messages.check_body(body, op, caller)
  if op == "create" and (body.html == nil) == (body.template_id == nil) then
    raise("%s: give exactly one of 'html' or 'template_id'", caller)
  end
end

defs.reports = { name = "reports", ops = {} }

local classes = {}
for name, def in pairs(defs) do classes[name] = resource.class(def) end

-- The v2 interests namespace is also the v1 lookup: `client:interests()`.
classes.interests.__call = function(ns) return getmetatable(ns.client).interests(ns.client) end

-- A message action's answer: the envelope with the message (or the schedule) in result_data.
local function finish_message_action(plan, data)
  return resource.finish.written(plan, data)
end

local function message_action(self, id, action, send_time, caller)
  if self.client.closed then raise("client is closed") end
  local def = self.def
  local text, why = resource.check_id("integer", id)
  if not text then raise("%s: id %s", caller, why) end
  local body = {}
  if action == "send" then
    local problem = checkers.timestamp(nil, send_time)
    if problem then raise("%s: send_time %s", caller, problem) end
    body.send_time = send_time
  elseif send_time ~= nil then
    raise("%s: takes only the message's id", caller)
  end
  return { method = "POST", path = def.path .. "/" .. text .. "/" .. action, body = resource.encode(body, caller),
           idempotent = false, def = def, expect = { "not_found" }, finish = finish_message_action }
end

local Messages = classes.messages

--- Schedules a draft message (`POST /v2/messages/{id}/send`).
-- @param id the message's id
-- @tparam string send_time `"YYYY-MM-DD HH:MM:SS"`
-- @return result_data (`id`, `send_time`, `recipients` counts), or nil, err
function Messages:send(id, send_time)
  return resource.run(self, message_action(self, id, "send", send_time, "messages:send"))
end

--- Reverts a scheduled message to a draft (`POST /v2/messages/{id}/cancel`).
-- @return the message, or nil, err
function Messages:cancel(id)
  return resource.run(self, message_action(self, id, "cancel", nil, "messages:cancel"))
end

--- Non-blocking `send`.
function Messages:send_async(id, send_time, callback)
  return resource.submit(self, message_action(self, id, "send", send_time, "messages:send_async"), callback)
end

--- Non-blocking `cancel`.
function Messages:cancel_async(id, callback)
  return resource.submit(self, message_action(self, id, "cancel", nil, "messages:cancel_async"), callback)
end

-- ------------------------------------------------------------------------
-- Reports
-- ------------------------------------------------------------------------

local REPORT_OPTIONS = set{ "message_id", "start_date", "end_date", "segment" }

local function date_param(v, name, caller)
  if type(v) ~= "string" or not schema.time.parse_date(v) then
    raise("%s: %s must be a date 'YYYY-MM-DD'", caller, name)
  end
  return v
end

-- `{ tag = id }` -> "iid|<id>", `{ segment = id }` -> "fid|<id>", or Envoke's own text.
local function segment_param(v, caller)
  if type(v) == "string" and v:find("^[if]id|[%w_%-]+$") then return v end
  if type(v) == "table" then
    local kind, id = next(v)
    if next(v, kind) == nil and (kind == "tag" or kind == "segment") then
      local text = resource.check_id("string", id)
      if text then return (kind == "tag" and "iid|" or "fid|") .. text end
    end
  end
  raise("%s: segment must be { tag = id }, { segment = id }, 'iid|<tag id>' or 'fid|<segment id>'", caller)
end

local function report_plan(self, opts, caller)
  if self.client.closed then raise("client is closed") end
  if type(opts) ~= "table" then raise("%s: options must be a table, got %s", caller, type(opts)) end
  local params = {}
  for k, v in pairs(opts) do
    if not REPORT_OPTIONS[k] then raise("%s: unknown option '%s'", caller, tostring(k)) end
    if k == "message_id" then
      local ids = type(v) == "table" and v or nil
      local list = {}
      for i, id in ipairs(ids or { v }) do
        local text, why = resource.check_id("integer", id)
        if not text then raise("%s: message_id%s %s", caller, ids and "[" .. i .. "]" or "", why) end
        list[i] = text
      end
      if ids and (list[1] == nil or #list ~= #ids) then
        raise("%s: message_id must be an id or a list of ids", caller)
      end
      params.message_id = ids and list or list[1]
    elseif k == "segment" then
      params.segment = segment_param(v, caller)
    else
      params[k] = date_param(v, k, caller)
    end
  end
  if params.start_date and params.end_date and params.start_date > params.end_date then
    raise("%s: start_date is after end_date", caller)
  end
  return { method = "GET", path = query.path("/v1/reports/emailActivityMetrics", params), idempotent = true,
           def = { item = "report row", id = "integer" }, trimmed = true,
           finish = function(plan, data)
             local rows, err = resource.finish_list(plan, data)
             if not rows then return nil, err end
             for i, row in ipairs(rows) do
               if row.message_id ~= nil then
                 row.message_id = schema.normalize("id", row.message_id)
                 if not row.message_id then
                   return nil, errors.new("protocol", { message = ("row %d has an invalid message_id"):format(i) })
                 end
               end
             end
             return rows
           end }
end

local Reports = classes.reports

--- Email activity per message (`GET /v1/reports/emailActivityMetrics`, beta at Envoke).
-- @tparam table opts `message_id` (an id or a list), `start_date`, `end_date` (`YYYY-MM-DD`),
--   `segment` (`{ tag = id }`, `{ segment = id }`)
-- @return a list of `{ message_id, message_name, subject, sends, opens, clicks, bounces, revoked_consent }`,
--   or nil, err
function Reports:email_activity(opts)
  return resource.run(self, report_plan(self, opts, "reports:email_activity"))
end

--- Non-blocking `email_activity`.
function Reports:email_activity_async(opts, callback)
  return resource.submit(self, report_plan(self, opts, "reports:email_activity_async"), callback)
end

-- ------------------------------------------------------------------------
-- Calls on the client itself
-- ------------------------------------------------------------------------

local SEND_RULES = resource.rules{
  id = { type = "id" },
  name = { type = "string", min = 3, max = 100 },
  subject = { type = "string", min = 6, max = 120 },
  group = { type = "name_or_id", min = 1, max = 255 },
  sender = { type = "name_or_id", min = 1, max = 255, format = "sender" },
  recipients = { type = "emails" },
  html = { type = "string", min = 1 },
  template_id = { type = "id" },
  language = { type = "enum", values = { "en", "fr" } },
  track_recipient_activity = { type = "boolean" },
  enable_merge_fields = { type = "boolean" },
}

local SEND_DEF = { fields = SEND_RULES, readonly = {}, item = "message", id = "integer" }

-- /v1/send: a new message, or (with `id`) more recipients for one already sent.
function SEND_DEF.check_body(body, _, caller)
  if body.recipients == nil then raise("%s: field 'recipients' is required", caller) end
  if body.id ~= nil then
    for k in pairs(body) do
      if k ~= "id" and k ~= "recipients" then
        raise("%s: with 'id' (adding recipients to a message) only 'recipients' may be given, not '%s'", caller, k)
      end
    end
    return
  end
  for _, k in ipairs{ "name", "subject", "sender" } do
    if body[k] == nil then raise("%s: field '%s' is required", caller, k) end
  end
  if (body.html == nil) == (body.template_id == nil) then
    raise("%s: give exactly one of 'html' or 'template_id'", caller)
  end
end

local function send_plan(client, fields, caller)
  client:check_open()
  local body = resource.body(SEND_DEF, fields, "create", caller)
  return { method = "POST", path = "/v1/send", body = resource.encode(body, caller), idempotent = false,
           def = SEND_DEF, finish = resource.finish.written }
end

local LEGACY_FIELDS = resource.rules{
  contact_id = { type = "id" },
  to_email = { type = "string", max = 60 },
  to_name = { type = "string", max = 255 },
  from_name = { type = "string", max = 255 },
  from_email = { type = "string", max = 60 },
  reply_name = { type = "string", max = 255 },
  reply_email = { type = "string", max = 60 },
  campaign_name = { type = "string", min = 1, max = 255, required = true },
  message_subject = { type = "string", max = 255 },
  message_html = { type = "string" },
}
local LEGACY_EMAILS = set{ "to_email", "from_email", "reply_email" }

local function legacy_email(e, i, caller)
  local where = ("%s: emails[%d]"):format(caller, i)
  if type(e) ~= "table" then raise("%s must be a table, got %s", where, type(e)) end
  for k, v in pairs(e) do
    local rule = LEGACY_FIELDS[k]
    if not rule then raise("%s: unknown field '%s'", where, tostring(k)) end
    local problem = checkers[rule.type](rule, v)
    if not problem and LEGACY_EMAILS[k] and not schema.normalize("email", v) then
      problem = "is not an email address"
    end
    if problem then raise("%s: field '%s' %s", where, k, problem) end
  end
  if e.campaign_name == nil then raise("%s: field 'campaign_name' is required", where) end
  if e.to_email == nil and e.contact_id == nil then raise("%s: give 'to_email' or 'contact_id'", where) end
  local copy = {}
  for k, v in pairs(e) do copy[k] = v end
  return copy
end

-- The legacy answer is a JSON array, sometimes after text (PHP warnings):
-- clients cut at the first '['.
local function finish_legacy(plan, raw)
  local start = type(raw) == "string" and raw:find("[", 1, true)
  local data = start and require("cjson.safe").decode(raw:sub(start))
  if type(data) ~= "table" or (next(data) ~= nil and not schema.is_array(data)) then
    return nil, errors.new("protocol", { message = "the SendEmails answer holds no JSON array" })
  end
  local out = {}
  for i, item in ipairs(data) do
    if type(item) ~= "table" then
      return nil, errors.new("protocol", { message = ("item %d of the SendEmails answer is not an object"):format(i) })
    end
    local r = {}
    for k, v in pairs(item) do r[k] = v end
    r.ok = item.result_value == "true" or item.result_value == true
    out[i] = r
  end
  if #out ~= plan.count then
    return nil, errors.new("protocol", {
      message = ("the SendEmails answer has %d results for %d emails"):format(#out, plan.count) })
  end
  return out
end

local function legacy_plan(client, emails, caller)
  client:check_open()
  if type(emails) ~= "table" or not schema.is_array(emails) or emails[1] == nil then
    raise("%s: emails must be a non-empty list of email tables", caller)
  end
  local list = {}
  for i, e in ipairs(emails) do list[i] = legacy_email(e, i, caller) end
  local body = { SendEmails = { { EmailDataArray = { { email = list } } } } }
  return { method = "POST", path = "/api/v4legacy/send/SendEmails", body = resource.encode(body, caller),
           idempotent = false, envelope = "text", count = #list, finish = finish_legacy }
end

-- /v1/customfields: Envoke's pages do not show its shape. Names, objects
-- with a key or name, or an id -> name map are all read as a list of names.
local function finish_names(plan, data)
  if type(data) ~= "table" then
    return nil, errors.new("protocol", { message = plan.path .. " was answered with something other than a list" })
  end
  local names = {}
  if next(data) == nil or schema.is_array(data) then
    for i, v in ipairs(data) do
      local name = type(v) == "string" and v or type(v) == "table" and (v.key or v.name)
      if type(name) ~= "string" then
        return nil, errors.new("protocol", { message = ("item %d of %s has no name"):format(i, plan.path) })
      end
      names[i] = name
    end
  else
    for _, v in pairs(data) do
      if type(v) == "string" then names[#names + 1] = v end
    end
    table.sort(names)
  end
  return names
end

local function names_plan(client)
  client:check_open()
  return { method = "GET", path = "/v1/customfields", idempotent = true, finish = finish_names }
end

local methods = {}

--- Sends an email to a list of recipients (`POST /v1/send`), or adds
-- recipients to a message sent that way (`{ id = …, recipients = {…} }`).
-- Lengths are checked first: `name` 3–100 characters, `subject` 6–120.
--    local r, err = client:send{ name = "Welcome", subject = "Welcome aboard", sender = "Jane Doe <jane@example.com>",
--                                recipients = { "a@example.com" }, html = "<p>Hello</p>" }
-- @tparam table fields `name`, `subject`, `sender` ("First Last <email>" or an id), `recipients`,
--   `html` or `template_id`, and optionally `group`, `language` (en|fr), `track_recipient_activity`,
--   `enable_merge_fields`
-- @return result_data: `id`, `new_contacts_created`, `summary`, `recipients`; or nil, err
function methods:send(fields) return self:execute(send_plan(self, fields, "send")) end

--- Non-blocking `send`.
function methods:send_async(fields, callback)
  return self:engine():submit(send_plan(self, fields, "send_async"), resource.callback_of(callback))
end

--- The legacy `SendEmails` call (`POST /api/v4legacy/send/SendEmails`): one
-- transactional email each, with its own HTML. An unknown `to_email` creates a
-- contact with consent "Not provided", and nothing is sent to it.
-- @tparam table emails a list of `{ to_email | contact_id, campaign_name, to_name, from_name,
--   from_email, reply_name, reply_email, message_subject, message_html }`
-- @return one result per email, in order: the answer's item plus `ok` (its `result_value` is "true");
--   or nil, err
function methods:send_emails(emails) return self:execute(legacy_plan(self, emails, "send_emails")) end

--- Non-blocking `send_emails`.
function methods:send_emails_async(emails, callback)
  return self:engine():submit(legacy_plan(self, emails, "send_emails_async"), resource.callback_of(callback))
end

--- The names of the account's custom fields (v1 `GET /v1/customfields`).
-- @return a list of names, or nil, err
function methods:custom_field_names() return self:execute(names_plan(self)) end

--- Non-blocking `custom_field_names`.
function methods:custom_field_names_async(callback)
  return self:engine():submit(names_plan(self), resource.callback_of(callback))
end

--- Adds the calls on the client itself (`send`, `send_emails`, `custom_field_names`) to its class.
-- @local
function resources.extend(Client)
  for name, fn in pairs(methods) do Client[name] = fn end
end

--- Gives a new client its namespaces (`client.tags`, ...).
-- @local
function resources.attach(client)
  for name, class in pairs(classes) do client[name] = resource.new(client, class) end
end

resources.classes = classes
resources.null = core.null

return resources
