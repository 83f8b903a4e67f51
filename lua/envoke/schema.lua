--- The field schema of an Envoke contact (docs/envoke-api.md §4).
--
-- One table describes every field; the sandbox server validates requests with
-- it and the client library validates its setters with it, so both agree on
-- what a valid value is.  Pure Lua, runs on 5.1-5.4 and LuaJIT.
--
-- Values handed to `check` are what a JSON decoder produces: strings,
-- numbers, booleans and tables.  A blank string `""` is a valid value for
-- every text-like field: whether it clears the field or is ignored is a rule
-- of the request (`write_empty_values`), not of the field.
-- @module envoke.schema

local schema = {}

local LANGUAGES = { "en", "fr", "ar", "zh", "de", "it", "ja", "ko", "pt", "ru", "es" }

--- Every field of the contact object, by name.
-- `type` selects the checker; `max` is a length in characters;
-- `readonly` fields are answered but never written by a client;
-- `writeonly` fields are written but never answered.
schema.fields = {
  id = { type = "id", readonly = true },
  external_id = { type = "string", max = 32, readonly = true },
  remote_id = { type = "string", max = 60 },
  first_name = { type = "string", max = 20 },
  last_name = { type = "string", max = 20 },
  title = { type = "string", max = 50 },
  email = { type = "string", max = 60, format = "email" },
  company = { type = "string", max = 50 },
  phone = { type = "string", max = 25 },
  address_1 = { type = "string", max = 100 },
  address_2 = { type = "string", max = 100 },
  city = { type = "string", max = 20 },
  country = { type = "string", max = 50 },
  province = { type = "string", max = 50 },
  postal_code = { type = "string", max = 15 },
  website = { type = "string", max = 255 },
  language = { type = "enum", values = LANGUAGES },
  feedback = { type = "string", max = 65535 },
  consent_status = { type = "consent" },
  consent_description = { type = "string", max = 65535 },
  consent_effective_date = { type = "datetime" },
  consent_expiry = { type = "date", readonly = true },
  consent_force_downgrade = { type = "boolean", writeonly = true },
  custom_fields = { type = "custom_fields" },
  interests = { type = "interests", actions = { "Set", "Unset" } },
  autoresponders = { type = "autoresponders", actions = { "Set", "Unset", "Dequeue" } },
  -- On Envoke's contact object (its webhook payloads carry it); its format is
  -- not documented, so either date-time form is read.
  date_created = { type = "timestamp", readonly = true },
}

--- A custom field value (`custom_fields.<name>`): nothing public gives a
-- length, so the sandbox uses the size of the other free-text fields.
schema.custom_field = { type = "string", max = 65535 }

--- Field order of Envoke's example contact (how a read answers).
schema.order = {
  "id", "external_id", "remote_id", "first_name", "last_name", "title", "email",
  "company", "phone", "address_1", "address_2", "city", "country", "province",
  "postal_code", "website", "language", "feedback", "consent_status",
  "consent_description", "consent_effective_date", "consent_expiry",
  "consent_force_downgrade", "custom_fields", "interests", "autoresponders", "date_created",
}

-- ------------------------------------------------------------------------
-- Consent (docs/envoke-api.md §5)
-- ------------------------------------------------------------------------

local STATUSES = {
  "Express", "Implied - Inquiry", "Implied - Transaction", "Implied: No Expiry",
  "Expired", "Not provided", "Revoked", "External Spam Reported", "Envoke Spam Reported",
}

local function set_of(list)
  local set = {}
  for _, v in ipairs(list) do set[v] = true end
  return set
end

-- Envoke's field page and Envoke's own integration code spell two statuses
-- differently; which one its server prefers is unknown, so a status is sent
-- as the caller spelled it and both spellings mean the same status.
local ALTERNATE = { ["Implied - No Expiry"] = "Implied: No Expiry", ["Not Provided"] = "Not provided" }

-- Lower-cased spelling -> the status (for the rules), and -> the spelling to send.
local CONSENT_SPELLINGS, WIRE_SPELLINGS = {}, {}
for _, s in ipairs(STATUSES) do CONSENT_SPELLINGS[s:lower()], WIRE_SPELLINGS[s:lower()] = s, s end
for alt, status in pairs(ALTERNATE) do
  CONSENT_SPELLINGS[alt:lower()] = status
  if alt:lower() ~= status:lower() then WIRE_SPELLINGS[alt:lower()] = alt end
end

schema.consent = {
  --- Envoke's spellings, sendable ones first, in Envoke's order.
  statuses = STATUSES,
  --- Statuses that allow sending email.
  sendable = set_of { "Express", "Implied - Inquiry", "Implied - Transaction", "Implied: No Expiry" },
  --- Statuses only Envoke sets; a client sending one gets a 400.
  envoke_only = set_of { "Expired", "Envoke Spam Reported" },
}

--- Envoke's spelling of a consent status, matched case-insensitively.
-- @tparam string s a status as a client wrote it
-- @treturn string|nil the Envoke's spelling, or nil when it is no status
-- @local
function schema.consent.canonical(s)
  if type(s) ~= "string" then return nil end
  return CONSENT_SPELLINGS[s:lower()]
end

--- The spelling of a consent status to send: the caller's own when it is one
-- of Envoke's spellings, else (another case) that spelling in Envoke's case;
-- never one spelling turned into the other.
-- @tparam string s a status as a client wrote it
-- @treturn string|nil the spelling, or nil when it is no status
function schema.consent.spelling(s)
  if type(s) ~= "string" then return nil end
  local lower = s:lower()
  if CONSENT_SPELLINGS[lower] == s or ALTERNATE[s] then return s end
  return WIRE_SPELLINGS[lower]
end

-- ------------------------------------------------------------------------
-- Text
-- ------------------------------------------------------------------------

local is_ascii
if utf8 and utf8.len then
  local ulen = utf8.len
  -- One character per byte is every byte below 128; utf8.len (5.3+) is a
  -- plain C loop, cheaper than a pattern.
  function is_ascii(s) return ulen(s) == #s end
elseif jit then
  local byte = string.byte
  -- LuaJIT compiles a loop over the bytes; a pattern would end the trace.
  function is_ascii(s)
    for i = 1, #s do
      if byte(s, i) > 127 then return false end
    end
    return true
  end
else
  -- NUL is left to utf8_len's loop: a class range starting at \0 is malformed in LuaJIT.
  function is_ascii(s) return s:find("^[\1-\127]*$") ~= nil end
end

--- Whether a string is plain ASCII, so that its characters are its bytes
-- (false for some strings holding a NUL byte, which utf8_len counts right).
-- @tparam string s
-- @treturn boolean
-- @local
schema.is_ascii = is_ascii

--- Number of characters in a UTF-8 string.
-- Strict: rejects overlong forms, surrogates and code points above U+10FFFF.
-- @tparam string s
-- @treturn integer|nil characters, or nil when `s` is not valid UTF-8
-- @local
function schema.utf8_len(s)
  if is_ascii(s) then return #s end
  local n, i, len = 0, 1, #s
  local byte = string.byte
  while i <= len do
    local c = byte(s, i)
    local extra, min2, max2
    if c < 0x80 then
      extra = 0
    elseif c >= 0xC2 and c <= 0xDF then
      extra = 1
    elseif c >= 0xE0 and c <= 0xEF then
      extra = 2
      -- E0 would allow overlong forms, ED the UTF-16 surrogates.
      min2 = c == 0xE0 and 0xA0 or 0x80
      max2 = c == 0xED and 0x9F or 0xBF
    elseif c >= 0xF0 and c <= 0xF4 then
      extra = 3
      min2 = c == 0xF0 and 0x90 or 0x80
      max2 = c == 0xF4 and 0x8F or 0xBF
    else
      return nil
    end
    if i + extra > len then return nil end
    for k = 1, extra do
      local b = byte(s, i + k)
      local lo, hi = 0x80, 0xBF
      if k == 1 and min2 then lo, hi = min2, max2 end
      if b < lo or b > hi then return nil end
    end
    i = i + extra + 1
    n = n + 1
  end
  return n
end

local function looks_like_email(s)
  -- Deliberately loose: one "@", no blanks, a dot in the domain.
  return s:find("^[^%s@]+@[^%s@]+%.[^%s@]+$") ~= nil
end

--- The first `n` characters of a UTF-8 string (never part of a character).
-- @tparam string s valid UTF-8
-- @tparam integer n
-- @treturn string
function schema.utf8_prefix(s, n)
  local count = 0
  for start in s:gmatch("()[^\128-\191]") do
    count = count + 1
    if count > n then return s:sub(1, start - 1) end
  end
  return s
end

-- ------------------------------------------------------------------------
-- Dates (UTC, proleptic Gregorian; integer seconds since 1970)
-- ------------------------------------------------------------------------

local floor = math.floor

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

--- Days in month m (1-12) of year y (proleptic Gregorian).
-- @local
function schema.days_in_month(y, m)
  if m == 2 then
    local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
    return leap and 29 or 28
  end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

local function valid_date(y, m, d)
  return m >= 1 and m <= 12 and d >= 1 and d <= schema.days_in_month(y, m)
end

--- Calendar helpers shared by the `datetime` and `date` field types.
-- @local
schema.time = {}

--- Seconds since the epoch of a UTC calendar time.
-- @local
function schema.time.epoch(y, m, d, hh, mm, ss)
  return days_from_civil(y, m, d) * 86400 + (hh or 0) * 3600 + (mm or 0) * 60 + (ss or 0)
end

--- UTC calendar fields of an epoch time: year, month, day, hour, minute, second.
-- @local
function schema.time.civil(t)
  t = floor(t)
  local days = floor(t / 86400)
  local rest = t - days * 86400
  local y, m, d = civil_from_days(days)
  return y, m, d, floor(rest / 3600), floor(rest % 3600 / 60), rest % 60
end

--- RFC 3339 text in UTC, as the API answers it: `2017-10-27T18:19:57+00:00`.
-- @local
function schema.time.format_datetime(t)
  return ("%04d-%02d-%02dT%02d:%02d:%02d+00:00"):format(schema.time.civil(t))
end

--- `yyyy-mm-dd` of an epoch time (UTC).
-- @local
function schema.time.format_date(t)
  local y, m, d = schema.time.civil(t)
  return ("%04d-%02d-%02d"):format(y, m, d)
end

--- Parses an RFC 3339 date-time; UTC is assumed when the zone is missing.
-- Accepts `T`, `t` or a space between date and time and drops fractions of a
-- second; a leap second (`:60`) counts as `:59`.
-- @tparam string s
-- @treturn integer|nil seconds since the epoch, or nil when `s` is no date-time
-- @local
function schema.time.parse_datetime(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, hh, mi, ss, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d, hh, mi, ss = tonumber(y), tonumber(mo), tonumber(d), tonumber(hh), tonumber(mi), tonumber(ss)
  if not valid_date(y, mo, d) or hh > 23 or mi > 59 or ss > 60 then return nil end
  if ss == 60 then ss = 59 end
  rest = rest:gsub("^%.%d+", "", 1)
  local offset
  if rest == "" or rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):(%d%d)$")
    if not sign then return nil end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then return nil end
    offset = (oh * 60 + om) * 60
    if sign == "-" then offset = -offset end
  end
  return schema.time.epoch(y, mo, d, hh, mi, ss) - offset
end

--- Parses a `yyyy-mm-dd` date.
-- @treturn integer|nil seconds since the epoch of that day's midnight UTC
-- @local
function schema.time.parse_date(s)
  if type(s) ~= "string" then return nil end
  local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then return nil end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if not valid_date(y, m, d) then return nil end
  return schema.time.epoch(y, m, d)
end

-- ------------------------------------------------------------------------
-- Checkers, one per field type.  Each returns the normalized value, or nil
-- and a problem phrase that reads after the field's name.
-- ------------------------------------------------------------------------

local MAX_ID = 4294967295

local function got(v)
  return "got " .. type(v)
end

-- Lua 5.3+ keeps integers apart from floats; JSON decoders give floats.
local to_integer = math.tointeger or function(v) return v end

--- Whether a decoded JSON table is an array (keys exactly 1..n).
-- An empty table counts as both an array and an object.
-- @treturn boolean
-- @local
function schema.is_array(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" then return false end
    n = n + 1
  end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

local checkers = {}

function checkers.id(_, v)
  local n
  if type(v) == "number" then
    n = v
  elseif type(v) == "string" and v:find("^%d+$") and #v <= 10 then
    n = tonumber(v)
  elseif type(v) == "string" then
    return nil, "must be an integer from 1 to " .. MAX_ID .. ", got '" .. v .. "'"
  else
    return nil, "must be an integer from 1 to " .. MAX_ID .. ", " .. got(v)
  end
  if n ~= floor(n) or n < 1 or n > MAX_ID then
    return nil, "must be an integer from 1 to " .. MAX_ID .. ", got " .. tostring(v)
  end
  return to_integer(floor(n))
end

function checkers.string(spec, v)
  if type(v) ~= "string" then return nil, "must be a string, " .. got(v) end
  local n = schema.utf8_len(v)
  if not n then return nil, "is not valid UTF-8" end
  if spec.max and n > spec.max then
    return nil, ("is too long (%d characters, maximum %d)"):format(n, spec.max)
  end
  if spec.format == "email" and v ~= "" and not looks_like_email(v) then
    return nil, "is not an email address"
  end
  return v
end

function checkers.enum(spec, v)
  if type(v) ~= "string" then return nil, "must be a string, " .. got(v) end
  if v == "" then return v end
  local lower = v:lower()
  for _, allowed in ipairs(spec.values) do
    if allowed == lower then return allowed end
  end
  return nil, "is not one of " .. table.concat(spec.values, ", ")
end

function checkers.consent(_, v)
  if type(v) ~= "string" then return nil, "must be a string, " .. got(v) end
  if v == "" then return v end
  local status = schema.consent.canonical(v)
  if not status then
    return nil, "is not one of " .. table.concat(STATUSES, ", ")
  end
  if schema.consent.envoke_only[status] then
    return nil, "cannot be set to '" .. status .. "': only Envoke sets it"
  end
  return schema.consent.spelling(v)
end

function checkers.datetime(_, v)
  if type(v) ~= "string" then return nil, "must be a string, " .. got(v) end
  if v == "" then return v end
  local t = schema.time.parse_datetime(v)
  if not t then return nil, "is not an RFC 3339 date-time" end
  return schema.time.format_datetime(t)
end

-- A server-owned time: RFC 3339, or Envoke's "yyyy-mm-dd hh:mm:ss" (UTC).
function checkers.timestamp(_, v)
  if type(v) ~= "string" then return nil, "must be a string, " .. got(v) end
  if v == "" then return v end
  if not schema.time.parse_datetime(v) then return nil, "is not a date-time" end
  return v
end

function checkers.date(_, v)
  if type(v) ~= "string" then return nil, "must be a string, " .. got(v) end
  if v == "" then return v end
  if not schema.time.parse_date(v) then return nil, "is not a yyyy-mm-dd date" end
  return v
end

function checkers.boolean(_, v)
  if type(v) ~= "boolean" then return nil, "must be true or false, " .. got(v) end
  return v
end

function checkers.custom_fields(_, v)
  if type(v) ~= "table" or (next(v) ~= nil and schema.is_array(v)) then
    return nil, "must be an object of custom field name -> string"
  end
  local names, problems, out = {}, {}, {}
  for k in pairs(v) do names[#names + 1] = k end
  table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(names) do
    local value, problem = checkers.string(schema.custom_field, v[k])
    if type(k) ~= "string" or k == "" or not schema.utf8_len(k) then
      problems[#problems + 1] = "a name that is not a non-empty UTF-8 string"
    elseif problem then
      problems[#problems + 1] = "'" .. tostring(k) .. "' " .. problem
    else
      out[k] = value
    end
  end
  if #problems > 0 then return nil, "has values that are not valid: " .. table.concat(problems, "; ") end
  return out
end

-- Interests and autoresponders share both write forms (docs/envoke-api.md §6): an array of
-- names, each meaning Set, or an object of name-or-id -> action.
local function check_changes(spec, v)
  local shape = "must be an array of names or an object of name or id -> " .. table.concat(spec.actions, "/")
  if type(v) ~= "table" then return nil, shape .. ", " .. got(v) end
  if schema.is_array(v) then
    local out = {}
    for i, name in ipairs(v) do
      if type(name) == "number" and name == floor(name) and name > 0 then
        out[i] = ("%d"):format(name)
      elseif type(name) == "string" and name ~= "" then
        if not schema.utf8_len(name) then return nil, "has a name that is not valid UTF-8 (item " .. i .. ")" end
        out[i] = name
      else
        return nil, shape .. " (item " .. i .. " is not a name)"
      end
    end
    return out
  end
  local out, problems, keys = {}, {}, {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local action = v[k]
    local canonical
    if type(action) == "string" then
      for _, a in ipairs(spec.actions) do
        if a:lower() == action:lower() then canonical = a end
      end
    end
    if type(k) == "string" and not schema.utf8_len(k) then
      problems[#problems + 1] = "a name that is not valid UTF-8"
    elseif not canonical then
      problems[#problems + 1] = "'" .. tostring(k) .. "' must be " .. table.concat(spec.actions, ", ") ..
        ", got " .. (type(action) == "string" and "'" .. action .. "'" or type(action))
    else
      out[tostring(k)] = canonical
    end
  end
  if #problems > 0 then return nil, "has values that are not valid: " .. table.concat(problems, "; ") end
  return out
end

checkers.interests = check_changes
checkers.autoresponders = check_changes

--- The spec of a field name, including `custom_fields.<name>` paths.
-- @treturn table|nil
-- @local
function schema.field(name)
  if type(name) ~= "string" then return nil end
  local spec = schema.fields[name]
  if spec then return spec end
  if name:find("^custom_fields%.") and #name > #"custom_fields." then return schema.custom_field end
  return nil
end

--- Checks a value's type and content, ignoring whether it may be written.
-- Used for keys (an `id` in a body) and for values read back.
-- @tparam string name a field name or `custom_fields.<name>`
-- @param value as decoded from JSON
-- @return the normalized value (Envoke's spelling, lower-case language, UTC
--   date-time, integer id, canonical Set/Unset/Dequeue) or nil, problem
-- @local
function schema.normalize(name, value)
  local spec = schema.field(name)
  if not spec then return nil, "is an unknown field" end
  return checkers[spec.type](spec, value)
end

--- Checks a value a client wants to write to a field.
-- @tparam string name a field name or `custom_fields.<name>`
-- @param value as decoded from JSON
-- @return the normalized value, or nil and a problem phrase without the
--   field's name, such as "is too long (61 characters, maximum 60)"
-- @local
function schema.check(name, value)
  local spec = schema.field(name)
  if not spec then return nil, "is an unknown field" end
  if spec.readonly then return nil, "is read-only" end
  return checkers[spec.type](spec, value)
end

--- The changes an `interests` or `autoresponders` value asks for, in a fixed
-- order: `{ {key = "International", action = "Set"}, ... }`.
-- @param value a value `check` has normalized
-- @local
function schema.changes(value)
  local list = {}
  if schema.is_array(value) then
    for _, name in ipairs(value) do list[#list + 1] = { key = name, action = "Set" } end
  else
    for key, action in pairs(value) do list[#list + 1] = { key = key, action = action } end
    table.sort(list, function(a, b) return a.key < b.key end)
  end
  return list
end

return schema
