--- Validating the body of a contact write (insert, update, upsert).
--
-- Every field is checked through `envoke.schema`, every problem is
-- collected (docs/envoke-api.md §2: all problems in one 400), and the result is a plan
-- that `envoke.sandbox.contact.apply` carries out once the contact is known:
--
--     { id = <key or nil>, external_id = <as sent or nil>, force = <bool>,
--       invalid = { <field> = true },                  -- fields with a problem
--       values = { first_name = "Ann", ... },          -- "" clears
--       consent = nil | { status, description, effective },
--       consent_description = nil | "...",            -- sent without a status
--       custom_fields = { barcode = "123" },           -- "" removes
--       interests = { {entry = <catalogue entry>, action = "Set"}, ... },
--       autoresponders = { ... } }
-- @module envoke.sandbox.write

local schema = require "envoke.schema"
local json = require "envoke.sandbox.json"

local write = {}

-- Fields a client cannot blank even with write_empty_values.
local NOT_CLEARABLE = { email = true, consent_status = true, consent_effective_date = true }

local function ordered_keys(body)
  local known, unknown = {}, {}
  for _, name in ipairs(schema.order) do
    if body[name] ~= nil then known[#known + 1] = name end
  end
  for k in pairs(body) do
    if type(k) ~= "string" or not schema.fields[k] then unknown[#unknown + 1] = tostring(k) end
  end
  table.sort(unknown)
  for _, k in ipairs(unknown) do known[#known + 1] = k end
  return known
end

local function resolve_changes(name, value, opts, errors)
  local cat = opts.catalogue
  local out = {}
  local ns_find = name == "interests" and cat.interest or cat.nurture
  local what = name == "interests" and "interest, subscription or mandatory consent" or "nurture"
  for _, change in ipairs(schema.changes(value)) do
    local entry = ns_find(cat, change.key)
    if entry then
      out[#out + 1] = { entry = entry, action = change.action }
    elseif not opts.ignore_unknown then
      errors[#errors + 1] = name .. " names an unknown " .. what .. ": '" .. change.key .. "'"
    end
  end
  return out
end

-- The other reading of the field limits: a server that cuts an over-long
-- text instead of refusing it (the setting `overlong = "truncate"`).
local function fit(opts, name, v)
  local spec = opts.truncate and type(v) == "string" and schema.field(name)
  local n = spec and spec.max and schema.utf8_len(v)
  if n and n > spec.max then return schema.utf8_prefix(v, spec.max) end
  return v
end

local function custom_fields(v, plan, opts, errors)
  if type(v) ~= "table" or (next(v) ~= nil and schema.is_array(v)) then
    errors[#errors + 1] = "custom_fields must be an object of custom field name -> string"
    return
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local value = v[k]
    if value == json.null then value = "" end
    local name = opts.catalogue:custom_field(k)
    local checked, problem = schema.check("custom_fields." .. k, fit(opts, "custom_fields." .. k, value))
    if not name then
      if not opts.ignore_unknown then
        errors[#errors + 1] = "custom_fields." .. k .. " is not a custom field of this account"
      end
    elseif problem then
      errors[#errors + 1] = "custom_fields." .. k .. " " .. problem
    elseif checked ~= "" or opts.write_empty then
      plan.custom_fields[name] = checked
    end
  end
end

local function problem(plan, errors, name, text)
  errors[#errors + 1] = name .. " " .. text
  plan.invalid[name] = true
end

local function take_id(plan, errors, opts, v)
  if v == "" then return end
  local id, why = schema.normalize("id", v)
  if opts.insert then
    problem(plan, errors, "id", "is read-only (Envoke assigns it on insert)")
  elseif why then
    problem(plan, errors, "id", why)
  else
    plan.id = id
  end
end

-- A field that is a plain value: "" clears it, when the client asks for that.
local function take_value(plan, errors, opts, name, v)
  local value, why = schema.check(name, fit(opts, name, v))
  if why then
    problem(plan, errors, name, why)
  elseif value ~= "" then
    plan.values[name] = value
  elseif opts.write_empty then
    if NOT_CLEARABLE[name] then
      problem(plan, errors, name, "cannot be cleared")
    else
      plan.values[name] = ""
    end
  end
end

-- One field of the body into the plan.
local function take(plan, errors, opts, name, v, spec)
  if not spec then
    problem(plan, errors, name, "is an unknown field")
  elseif name == "id" then
    take_id(plan, errors, opts, v)
  elseif name == "external_id" then
    local value, why = schema.normalize(name, v)
    if why then problem(plan, errors, name, why) elseif value ~= "" then plan.external_id = value end
  elseif name == "consent_force_downgrade" then
    local value, why = schema.check(name, v)
    if why then problem(plan, errors, name, why) else plan.force = value end
  elseif name == "custom_fields" then
    custom_fields(v, plan, opts, errors)
  elseif name == "interests" or name == "autoresponders" then
    local value, why = schema.check(name, v)
    if why then
      problem(plan, errors, name, why)
    else
      plan[name] = resolve_changes(name, value, opts, errors)
    end
  else
    take_value(plan, errors, opts, name, v)
  end
end

-- consent_expiry is read-only and "ignored on updates" (docs/envoke-api.md §4),
-- so it is not even checked; nor is date_created, which Envoke sets.
local NOT_TAKEN = { consent_expiry = true, date_created = true }

local function take_all(plan, errors, opts, body)
  for _, name in ipairs(ordered_keys(body)) do
    local v = body[name]
    local spec = schema.fields[name]
    if v == json.null then
      -- null reads as blank for text; for the rest it is as if not sent.
      v = (spec and (spec.type == "string" or spec.type == "enum" or spec.type == "consent"
        or spec.type == "datetime" or spec.type == "date")) and "" or nil
    end
    if v ~= nil and not NOT_TAKEN[name] then take(plan, errors, opts, name, v, spec) end
  end
end

-- The consent fields form one consent record (docs/envoke-api.md §4).
-- Both of Envoke's spellings mean one status; the rules and reads use Envoke's field-page one.
local function take_consent(plan, errors)
  local values = plan.values
  local status = schema.consent.canonical(values.consent_status)
  local description = values.consent_description
  local effective = values.consent_effective_date
  values.consent_status, values.consent_description, values.consent_effective_date = nil, nil, nil
  if effective and not status then
    problem(plan, errors, "consent_effective_date",
      "is only accepted together with consent_status (it starts a new consent record)")
  end
  if status and schema.consent.sendable[status] and (description == nil or description == "") then
    problem(plan, errors, "consent_description", "is required with consent_status '" .. status .. "'")
  end
  if status then
    plan.consent = {
      status = status,
      description = description,
      effective = effective and schema.time.parse_datetime(effective),
    }
  elseif description then
    plan.consent_description = description
  end
end

--- Validates a decoded request body.
-- @tparam table body the decoded JSON object
-- @tparam table opts `{ catalogue = <catalogue>, write_empty = <bool>, insert = <bool>,
--   ignore_unknown = <bool>, truncate = <bool> }`; `insert` marks a plain insert, where an
--   `id` cannot be given; the last two are the other readings of docs/envoke-api.md (settings)
-- @treturn table the plan
-- @treturn table the problems, one string each (empty when valid)
function write.parse(body, opts)
  local errors = {}
  local plan = { values = {}, custom_fields = {}, interests = {}, autoresponders = {}, force = false, invalid = {} }
  take_all(plan, errors, opts, body)
  take_consent(plan, errors)
  return plan, errors
end

return write
