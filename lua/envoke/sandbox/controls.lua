--- Test controls under `/_sandbox/`: a path a real Envoke never serves.
-- They need no credentials, are never logged and never faulted.  Every
-- answer is an envelope `{"success": ..., "result_text": ..., "result_data": ...}`.
--
-- | route | what it does |
-- |---|---|
-- | `GET /_sandbox` | this list |
-- | `POST /_sandbox/reset` | empty the account: contacts, ids, log, faults, clock, settings, errors; |
-- |  | an optional body `{"catalogue": {...}}` replaces the catalogue |
-- | `GET /_sandbox/contacts` | every contact as the API reads it, plus `_sandbox` |
-- |  | (stored status, nurture queue states) |
-- | `POST /_sandbox/contacts` | load contacts (array, or `{"contacts": [...]}`), bypassing the write rules |
-- | `GET`, `DELETE /_sandbox/log` | read / clear the request log |
-- | `GET`, `POST /_sandbox/clock` | read / move the clock: `{"advance": s}`, `{"advance_days": n}`, |
-- |  | `{"set": "<RFC 3339>"}`, `{"reset": true}` |
-- | `GET`, `POST /_sandbox/settings` | read / change account settings (`allow_duplicate_emails`, `name`, ...) |
-- | `GET`, `POST`, `DELETE /_sandbox/faults` | list / add (object or array) / clear injected faults |
-- | `GET /_sandbox/errors` | internal errors caught (with traces), newest last |
-- | `GET`, `POST /_sandbox/deliveries` | webhook deliveries: list / deliver what is due (`envoke.sandbox.beyond`) |
-- | `GET /_sandbox/messages` | every email sent (`/v1/send`, messages, SendEmails) |
-- | `GET`, `POST /_sandbox/groups` | interest groups tags and subscriptions may name |
-- @module envoke.sandbox.controls

local schema = require "envoke.schema"
local catalogue = require "envoke.sandbox.catalogue"
local consent = require "envoke.sandbox.consent"
local faults = require "envoke.sandbox.faults"
local contact = require "envoke.sandbox.contact"
local response = require "envoke.sandbox.response"
local json = require "envoke.sandbox.json"

local controls = {}

local function ok(text, data)
  if data == nil then data = json.array() end
  return response.ok(text, data)
end

local function optional_object(req)
  if req.body == nil or req.body:find("^%s*$") then return {} end
  return req:json_object()
end

function controls.index()
  local names = json.array {
    "POST /_sandbox/reset", "GET /_sandbox/contacts", "POST /_sandbox/contacts",
    "GET /_sandbox/log", "DELETE /_sandbox/log", "GET /_sandbox/clock", "POST /_sandbox/clock",
    "GET /_sandbox/settings", "POST /_sandbox/settings", "GET /_sandbox/faults", "POST /_sandbox/faults",
    "DELETE /_sandbox/faults", "GET /_sandbox/errors",
  }
  for _, name in ipairs(require("envoke.sandbox.beyond").control_names) do names[#names + 1] = name end
  return ok("Sandbox controls", names)
end

function controls.reset(sb, req)
  local body, fail = optional_object(req)
  if not body then return fail() end
  if body.catalogue ~= nil then
    local good, cat = pcall(catalogue.new, body.catalogue)
    if not good then return response.invalid({ tostring(cat) }) end
    sb.cat = cat
  end
  sb:reset()
  return ok("Reset")
end

local function load_custom_fields(sb, record, v, problem)
  local value, why = schema.normalize("custom_fields", v)
  if why then problem("custom_fields " .. why) end
  for name, text in pairs(value or {}) do
    local canonical = sb.cat:custom_field(name)
    if not canonical then
      problem("custom_fields." .. name .. " is not a custom field of this account")
    elseif text ~= "" then
      record.custom_fields[canonical] = text
    end
  end
end

-- interests or autoresponders, as changes the way the API takes them.
local function load_changes(sb, record, k, v, problem)
  local value, why = schema.normalize(k, v)
  if why then problem(k .. " " .. why) end
  for _, change in ipairs(value and schema.changes(value) or {}) do
    local entry = k == "interests" and sb.cat:interest(change.key) or sb.cat:nurture(change.key)
    if not entry then
      problem(k .. " names an unknown entry '" .. change.key .. "'")
    elseif k == "interests" and change.action == "Set" then
      record.interests[#record.interests + 1] = entry.id
    elseif k == "autoresponders" and change.action ~= "Unset" then
      record.autoresponders[#record.autoresponders + 1] =
        { id = entry.id, state = change.action == "Dequeue" and "dequeued" or "queued" }
    end
  end
end

-- One field of a loaded contact into its record; returns the consent's
-- effective time when that is the field (it is set once the status is known).
local function load_field(sb, record, k, v, problem)
  if not schema.fields[k] then
    problem(tostring(k) .. " is an unknown field")
  elseif k == "consent_status" then
    local status = schema.consent.canonical(v)
    if status then record.consent_status = status else problem("consent_status is not a status") end
  elseif k == "custom_fields" then
    load_custom_fields(sb, record, v, problem)
  elseif k == "interests" or k == "autoresponders" then
    load_changes(sb, record, k, v, problem)
  else
    local value, why = schema.normalize(k, v)
    if why then
      problem(k .. " " .. why)
    elseif k == "consent_effective_date" then
      return value ~= "" and schema.time.parse_datetime(value) or nil
    elseif k == "date_created" then
      record.created = value ~= "" and schema.time.parse_datetime(value) or nil
    else
      record[k] = value
    end
  end
end

-- consent_expiry is derived and consent_force_downgrade write-only: not loaded.
local NOT_LOADED = { consent_expiry = true, consent_force_downgrade = true }

-- One loaded contact -> record, collecting problems as "contact #i: ...".
local function load_one(sb, obj, i, errors)
  local function problem(text) errors[#errors + 1] = "contact #" .. i .. ": " .. text end
  if type(obj) ~= "table" or (next(obj) ~= nil and schema.is_array(obj)) then
    problem("must be an object")
    return nil
  end
  local record = contact.new()
  local effective
  for k, v in pairs(obj) do
    if v ~= json.null and not NOT_LOADED[k] then effective = load_field(sb, record, k, v, problem) or effective end
  end
  record.created = record.created or sb:now()
  if record.consent_status ~= consent.default or effective then
    record.consent_effective = effective or sb:now()
    record.consent_expires = consent.expires_at(record.consent_status, record.consent_effective)
  end
  return record
end

function controls.load(sb, req)
  local body, err = req:json_value()
  if body == nil then return err() end
  local list = type(body) == "table" and (body.contacts or body)
  if type(list) ~= "table" or not schema.is_array(list) then
    return response.invalid({ "expected an array of contacts or {\"contacts\": [...]}" })
  end
  local errors, records = {}, {}
  for i, obj in ipairs(list) do records[i] = load_one(sb, obj, i, errors) end
  if #errors > 0 then return response.invalid(errors) end
  local now, out = sb:now(), json.array()
  for i, record in ipairs(records) do
    sb.store:insert(record)
    out[i] = contact.view(record, now, sb.cat)
  end
  sb:changed()
  return ok("Loaded", out)
end

function controls.dump(sb)
  local now, out = sb:now(), json.array()
  for i, record in ipairs(sb.store:all()) do
    local view = contact.view(record, now, sb.cat)
    local states = json.object()
    for _, n in ipairs(record.autoresponders) do
      local entry = sb.cat.nurtures.by_id[n.id]
      states[entry and entry.name or n.id] = n.state
    end
    view._sandbox = json.object({ stored_consent_status = record.consent_status, autoresponder_states = states })
    out[i] = view
  end
  return ok("Contacts", out)
end

function controls.log(sb)
  return ok("Log", sb.log:list())
end

function controls.clear_log(sb)
  sb.log:clear()
  return ok("Log cleared")
end

local function clock_state(sb)
  local now = sb:now()
  return json.object({ now = schema.time.format_datetime(now), epoch = now, offset = sb.offset },
    { "now", "epoch", "offset" })
end

function controls.clock(sb)
  return ok("Clock", clock_state(sb))
end

function controls.move_clock(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  if type(body.advance) == "number" then
    sb.offset = sb.offset + math.floor(body.advance)
  elseif type(body.advance_days) == "number" then
    sb.offset = sb.offset + math.floor(body.advance_days * 86400)
  elseif type(body.set) == "string" then
    local t = schema.time.parse_datetime(body.set)
    if not t then return response.invalid({ "set is not an RFC 3339 date-time" }) end
    sb.offset = t - math.floor(sb.clock())
  elseif body.reset == true then
    sb.offset = 0
  else
    return response.invalid({
      "expected {\"advance\": seconds}, {\"advance_days\": n}, {\"set\": date-time} or {\"reset\": true}",
    })
  end
  return ok("Clock", clock_state(sb))
end

--- The settings that pick a reading of what Envoke's documentation leaves
-- open (see sandbox/README.md), with the values each takes (the first is the default).
controls.READINGS = {
  allow_duplicate_emails = { [false] = true, [true] = true },
  unknown_names = { reject = true, ignore = true },
  overlong = { reject = true, truncate = true },
  write_status = { [200] = true, [201] = true },
  refused_downgrade = { silent = true, error = true },
  get_by_id = { [true] = true, [false] = true },
}

function controls.settings(sb)
  return ok("Settings", json.object(contact.copy_map(sb.settings)))
end

function controls.change_settings(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  local problems = {}
  for k, v in pairs(body) do
    if type(v) == "table" then problems[#problems + 1] = tostring(k) .. " must be a plain value" end
  end
  for name, allowed in pairs(controls.READINGS) do
    local v = body[name]
    if v ~= nil and v ~= json.null and not allowed[v] then
      local list = {}
      for a in pairs(allowed) do list[#list + 1] = tostring(a) end
      table.sort(list)
      problems[#problems + 1] = name .. " must be one of " .. table.concat(list, ", ")
    end
  end
  if #problems > 0 then return response.invalid(problems) end
  for k, v in pairs(body) do
    if v == json.null then sb.settings[k] = nil else sb.settings[k] = v end
  end
  return controls.settings(sb)
end

function controls.faults(sb)
  return ok("Faults", sb.faults:pending())
end

function controls.add_faults(sb, req)
  local body, err = req:json_value()
  if body == nil then return err() end
  local specs = (type(body) == "table" and next(body) ~= nil and schema.is_array(body)) and body or { body }
  local problems = {}
  for i, spec in ipairs(specs) do
    -- Validate all first so a bad list adds nothing.
    local probe = faults.new()
    local good, why = probe:add(spec)
    if not good then
      for _, p in ipairs(why) do problems[#problems + 1] = "fault #" .. i .. ": " .. p end
    end
  end
  if #problems > 0 then return response.invalid(problems) end
  local added = json.array()
  for i, spec in ipairs(specs) do added[i] = sb.faults:add(spec) end
  return ok("Faults added", added)
end

function controls.clear_faults(sb)
  sb.faults:clear()
  return ok("Faults cleared")
end

function controls.errors(sb)
  return ok("Errors", json.array(contact.copy_map(sb.errors)))
end

--- The control routes, in the router's format (see `envoke.sandbox`).
controls.routes = {
  { "^/_sandbox$", { GET = controls.index } },
  { "^/_sandbox/reset$", { POST = controls.reset } },
  { "^/_sandbox/contacts$", { GET = controls.dump, POST = controls.load } },
  { "^/_sandbox/log$", { GET = controls.log, DELETE = controls.clear_log } },
  { "^/_sandbox/clock$", { GET = controls.clock, POST = controls.move_clock } },
  { "^/_sandbox/settings$", { GET = controls.settings, POST = controls.change_settings } },
  { "^/_sandbox/faults$", { GET = controls.faults, POST = controls.add_faults, DELETE = controls.clear_faults } },
  { "^/_sandbox/errors$", { GET = controls.errors } },
}
-- Deliveries, sent messages, groups (envoke.sandbox.beyond).
for _, r in ipairs(require("envoke.sandbox.beyond").controls) do controls.routes[#controls.routes + 1] = r end

return controls
