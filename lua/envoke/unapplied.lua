--- What a write asked for that the server's answer does not show.
--
-- Envoke answers 200 and changes nothing when it refuses a consent downgrade
-- or skips a nurture for lack of consent; the only sign is the contact it
-- answers. Comparing the request with that answer finds every such field.
-- @module envoke.unapplied
-- @local
local schema = require "envoke.schema"

local unapplied = {}

local function lower(v) return type(v) == "string" and v:lower() or v end

-- Is `name` among the entries of a list the server answered (names, ids, or {id, name} objects)?
local function listed(list, name)
  if type(list) ~= "table" then return false end
  local want = lower(tostring(name))
  for _, item in ipairs(list) do
    if type(item) == "table" then
      if lower(tostring(item.name)) == want or tostring(item.id) == want then return true end
    elseif lower(tostring(item)) == want then
      return true
    end
  end
  return false
end

local function actions_applied(sent, got)
  for key, action in pairs(sent) do
    -- An id cannot be matched to the names an answer lists: taken as applied.
    if not tostring(key):find("^%d+$") then
      local present = listed(got, key)
      if (action == "Unset") == present then return false end
    end
  end
  return true
end

local function custom_applied(sent, got)
  got = type(got) == "table" and got or {}
  for k, v in pairs(sent) do
    local answered = got[k]
    if v == "" then
      if answered ~= nil and answered ~= "" then return false end
    elseif answered ~= v then
      return false
    end
  end
  return true
end

local function same_time(a, b)
  local ta, tb = schema.time.parse_datetime(a), schema.time.parse_datetime(b)
  return ta ~= nil and ta == tb
end

-- Fields compared otherwise than as plain text.
local COMPARE = {
  consent_status = function(a, b) return schema.consent.canonical(a) == schema.consent.canonical(b) end,
  consent_effective_date = same_time,
  email = function(a, b) return lower(a) == lower(b) end,
  language = function(a, b) return lower(a) == lower(b) end,
  interests = actions_applied,
  autoresponders = actions_applied,
  custom_fields = custom_applied,
}

-- Sent but never answered: nothing to compare.
local SKIP = { consent_force_downgrade = true, id = true }

--- The fields of `sent` (a request body) that `got` (the contact answered) does not show.
-- @tparam table sent field -> value as sent
-- @tparam table got the contact's fields as answered
-- @treturn table sorted field names
-- @local
function unapplied.fields(sent, got)
  local out = {}
  for name, value in pairs(sent) do
    if not SKIP[name] then
      local same = COMPARE[name] or function(a, b) return a == b end
      if not same(value, got[name]) then out[#out + 1] = name end
    end
  end
  table.sort(out)
  return out
end

return unapplied
