--- The account's catalogue: interests (tags), subscriptions, the mandatory
-- consent interest, nurtures, custom fields and settings.
--
-- Interests, subscriptions and mandatory consent share one namespace: the
-- API writes all three through `interests` (docs/envoke-api.md §6).  Nurtures have their own.
-- Names match case-insensitively; ids are positive integers, written as
-- numbers or numeric strings.
--
-- A catalogue spec (a Lua table, or the JSON of `--catalogue FILE`):
--
--     { interests = { {id = 1235, name = "International"}, ... },
--       subscriptions = { {id = 2345, name = "Newsletter Subscription"}, ... },
--       mandatory_consent = {id = 83293, name = "Mandatory consent"},
--       nurtures = { {id = 45756, name = "Marketing Sequence 1"}, ... },
--       custom_fields = { "custom_field_name1", "barcode" },
--       settings = { name = "Envoke Sandbox", allow_duplicate_emails = false } }
--
-- Sections a spec leaves out keep their defaults.
-- @module envoke.sandbox.catalogue

local catalogue = {}

--- The default catalogue: the names Envoke's examples use, with the
-- ids those examples show where they show one.
function catalogue.default_spec()
  return {
    interests = {
      { id = 1235, name = "International" },
      { id = 4377, name = "Consumer" },
      { id = 1236, name = "Business Products" },
    },
    subscriptions = {
      { id = 2344, name = "Newsletter" },
      { id = 2345, name = "Newsletter Subscription" },
      { id = 4557, name = "Specials" },
    },
    mandatory_consent = { id = 83293, name = "Mandatory consent" },
    nurtures = {
      { id = 45756, name = "Marketing Sequence 1" },
      { id = 32646, name = "Whitepaper Download" },
    },
    custom_fields = { "custom_field_name1", "barcode", "birthday", "membership_level" },
    settings = { name = "Envoke Sandbox", allow_duplicate_emails = false },
  }
end

local Catalogue = {}
Catalogue.__index = Catalogue

local function positive_id(v)
  local n = tonumber(v)
  if type(v) == "string" and not v:find("^%d+$") then n = nil end
  if not n or n < 1 or n ~= math.floor(n) or n > 4294967295 then return nil end
  return ("%d"):format(n)
end

-- Builds one namespace from lists of {id, name}; raises on a bad spec.
local function namespace(what, lists)
  local ns = { list = {}, by_id = {}, by_name = {} }
  for _, item in ipairs(lists) do
    local kind, entries = item[1], item[2]
    if type(entries) ~= "table" then error(what .. ": '" .. kind .. "' must be a list of {id, name}", 0) end
    for i, e in ipairs(entries) do
      local id = type(e) == "table" and positive_id(e.id)
      local name = type(e) == "table" and e.name
      if not id or type(name) ~= "string" or name == "" then
        error(what .. ": " .. kind .. " #" .. i .. " needs a numeric id and a name", 0)
      end
      if ns.by_id[id] then error(what .. ": id " .. id .. " is used twice", 0) end
      if ns.by_name[name:lower()] then error(what .. ": name '" .. name .. "' is used twice", 0) end
      local entry = { id = id, name = name, kind = kind }
      ns.list[#ns.list + 1] = entry
      ns.by_id[id] = entry
      ns.by_name[name:lower()] = entry
    end
  end
  return ns
end

--- Builds a catalogue from a spec (see the module doc).
-- Raises an error with a readable message when the spec is invalid.
-- @tparam[opt] table spec
function catalogue.new(spec)
  spec = spec or {}
  if type(spec) ~= "table" then error("catalogue must be an object", 0) end
  local default = catalogue.default_spec()
  local function section(name)
    if spec[name] == nil then return default[name] end
    return spec[name]
  end
  local mandatory = section("mandatory_consent")
  if type(mandatory) ~= "table" then mandatory = { id = mandatory, name = "Mandatory consent" } end
  if mandatory.name == nil then mandatory = { id = mandatory.id, name = "Mandatory consent" } end

  local self = setmetatable({}, Catalogue)
  self.interests = namespace("catalogue", {
    { "interest", section("interests") },
    { "subscription", section("subscriptions") },
    { "mandatory_consent", { mandatory } },
  })
  self.nurtures = namespace("catalogue", { { "nurture", section("nurtures") } })

  local fields = section("custom_fields")
  if type(fields) ~= "table" then error("catalogue: custom_fields must be a list of names", 0) end
  self.custom_fields, self.custom_by_name = {}, {}
  for _, name in ipairs(fields) do
    if type(name) ~= "string" or name == "" or name:find("%.") then
      error("catalogue: custom field names must be non-empty strings without '.'", 0)
    end
    if self.custom_by_name[name:lower()] then error("catalogue: custom field '" .. name .. "' is listed twice", 0) end
    self.custom_fields[#self.custom_fields + 1] = name
    self.custom_by_name[name:lower()] = name
  end

  local settings = section("settings")
  if type(settings) ~= "table" then error("catalogue: settings must be an object", 0) end
  self.settings = {}
  for k, v in pairs(default.settings) do self.settings[k] = v end
  for k, v in pairs(settings) do self.settings[k] = v end
  return self
end

local function find(ns, key)
  if type(key) == "number" then key = positive_id(key) end
  if type(key) ~= "string" then return nil end
  return ns.by_id[key] or ns.by_name[key:lower()]
end

--- The interest, subscription or mandatory consent entry named or numbered `key`.
-- @treturn table|nil `{id = "1235", name = "International", kind = "interest"}`
function Catalogue:interest(key)
  return find(self.interests, key)
end

--- The nurture entry named or numbered `key`.
function Catalogue:nurture(key)
  return find(self.nurtures, key)
end

--- The catalogue spelling of a custom field name (matched case-insensitively).
function Catalogue:custom_field(name)
  return self.custom_by_name[name:lower()]
end

return catalogue
