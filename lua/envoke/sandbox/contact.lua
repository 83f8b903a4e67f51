--- One contact record: how it is stored, read back and changed.
--
-- A record keeps what the API shows plus what it needs to derive the rest:
--
--     { id = 12, external_id = "9f...", email = "a@b.c", first_name = "", ...,
--       consent_status = "Express", consent_description = "...",
--       consent_effective = <epoch|nil>, consent_expires = <epoch|nil>,
--       custom_fields = { barcode = "123" },
--       interests = { "1235", ... },                      -- catalogue ids, in the order set
--       autoresponders = { {id = "45756", state = "queued"|"dequeued"}, ... } }
--
-- The status stored is the one last written; what a read shows is derived
-- at the sandbox's clock (an expired Implied consent reads as `Expired`).
-- @module envoke.sandbox.contact

local schema = require "envoke.schema"
local consent = require "envoke.sandbox.consent"
local json = require "envoke.sandbox.json"

local contact = {}

--- Plain text fields a client writes directly (everything string-like
-- except the consent fields and the read-only external_id).
contact.text_fields = {}
for _, name in ipairs(schema.order) do
  local spec = schema.fields[name]
  if (spec.type == "string" or spec.type == "enum") and not spec.readonly and not name:find("^consent_") then
    contact.text_fields[#contact.text_fields + 1] = name
  end
end

--- Fields a read answers, in Envoke's order.
contact.read_fields = {}
for _, name in ipairs(schema.order) do
  if not schema.fields[name].writeonly then contact.read_fields[#contact.read_fields + 1] = name end
end

--- A new, empty record (no id yet).
function contact.new()
  local record = {
    consent_status = consent.default,
    consent_description = "",
    custom_fields = {},
    interests = {},
    autoresponders = {},
  }
  for _, name in ipairs(contact.text_fields) do record[name] = "" end
  return record
end

--- The status the record reads as at `now`.
function contact.status(record, now)
  return consent.effective_status(record.consent_status, record.consent_expires, now)
end

local function names(list, ns, key)
  local out = json.array()
  for _, item in ipairs(list) do
    local entry = ns.by_id[key and item[key] or item]
    out[#out + 1] = entry and entry.name or (key and item[key] or item)
  end
  return out
end

--- One field of the record as a read answers it.
-- @param record
-- @tparam string field a read field or `custom_fields.<name>`
-- @tparam number now the sandbox's clock
-- @param cat the catalogue (names of interests and nurtures)
function contact.value(record, field, now, cat)
  if field == "consent_status" then
    return contact.status(record, now)
  elseif field == "consent_effective_date" then
    return record.consent_effective and schema.time.format_datetime(record.consent_effective) or ""
  elseif field == "consent_expiry" then
    return record.consent_expires and schema.time.format_date(record.consent_expires) or ""
  elseif field == "date_created" then
    -- Envoke's other dates read "yyyy-mm-dd hh:mm:ss"; the sandbox answers this one so too.
    return record.created and (schema.time.format_datetime(record.created):gsub("T", " "):gsub("[Z+].*$", "")) or ""
  elseif field == "custom_fields" then
    return json.object(record.custom_fields and contact.copy_map(record.custom_fields) or {}, cat.custom_fields)
  elseif field == "interests" then
    return names(record.interests, cat.interests)
  elseif field == "autoresponders" then
    return names(record.autoresponders, cat.nurtures, "id")
  elseif field:find("^custom_fields%.") then
    local name = cat:custom_field(field:sub(#"custom_fields." + 1)) or ""
    return record.custom_fields[name] or ""
  end
  local v = record[field]
  if v == nil then return "" end
  return v
end

function contact.copy_map(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

--- The record as the API answers it: Envoke's example contact.
-- @tparam[opt] table fields only these fields (the list's `fields` parameter)
function contact.view(record, now, cat, fields)
  local out = json.object({}, contact.read_fields)
  for _, name in ipairs(fields or contact.read_fields) do
    out[name] = contact.value(record, name, now, cat)
  end
  return out
end

local function index_of(list, id, key)
  for i, item in ipairs(list) do
    if (key and item[key] or item) == id then return i end
  end
  return nil
end

-- The write's consent change, if the rules allow it; notes why not otherwise.
local function apply_consent(record, plan, now, notes)
  local c = plan.consent
  if not c then
    if plan.consent_description then record.consent_description = plan.consent_description end
    return
  end
  local effective = c.effective or now
  local expires = consent.expires_at(c.status, effective)
  local ok, why = consent.change_allowed(contact.status(record, now), record.consent_expires, c.status, expires,
                                         plan.force)
  if not ok then
    -- A refused change keeps the whole consent record; the rest applies.
    notes[#notes + 1] = "consent unchanged: " .. why
    return
  end
  record.consent_status = c.status
  record.consent_description = c.description or ""
  record.consent_effective = effective
  record.consent_expires = expires
end

local function apply_custom_fields(record, plan)
  for name, value in pairs(plan.custom_fields) do
    if value == "" then
      record.custom_fields[name] = nil
    else
      record.custom_fields[name] = value
    end
  end
end

local function apply_interests(record, plan)
  for _, change in ipairs(plan.interests) do
    local i = index_of(record.interests, change.entry.id)
    if change.action == "Set" and not i then
      record.interests[#record.interests + 1] = change.entry.id
    elseif change.action == "Unset" and i then
      table.remove(record.interests, i)
    end
  end
end

-- Nurtures need a consent that allows sending, as it stands after this write.
local function apply_autoresponders(record, plan, now, notes)
  local sendable = schema.consent.sendable[contact.status(record, now)]
  local list = record.autoresponders
  for _, change in ipairs(plan.autoresponders) do
    local i = index_of(list, change.entry.id, "id")
    if change.action == "Set" then
      if not sendable then
        notes[#notes + 1] = "nurture '" .. change.entry.name .. "' not set: consent does not allow sending"
      elseif i then
        list[i].state = "queued"
      else
        list[#list + 1] = { id = change.entry.id, state = "queued" }
      end
    elseif change.action == "Unset" and i then
      table.remove(list, i)
    elseif change.action == "Dequeue" and i then
      list[i].state = "dequeued"
    end
  end
end

--- Applies a validated write (see `envoke.sandbox.write`) to a record.
-- @treturn table notes on what was refused (for the request log)
function contact.apply(record, plan, now)
  local notes = {}
  for name, value in pairs(plan.values) do record[name] = value end
  apply_consent(record, plan, now, notes)
  apply_custom_fields(record, plan)
  apply_interests(record, plan)
  apply_autoresponders(record, plan, now, notes)
  return notes
end

return contact
