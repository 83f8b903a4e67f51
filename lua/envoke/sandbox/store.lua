--- The account's contacts: records by id, with email and remote_id indexes,
-- the id counter, and the optional JSON data file.
--
-- The data file holds `{ "version": 1, "next_id": n, "contacts": [record...] }`
-- and is replaced atomically (written to a temporary file beside it, then
-- renamed), so a crash never leaves a torn file.
-- @module envoke.sandbox.store

local json = require "envoke.sandbox.json"
local contact = require "envoke.sandbox.contact"

local store = {}

local Store = {}
Store.__index = Store

--- A new, empty store.
-- @tparam[opt] table opts `{ data_file = path, random = function(n) -> n bytes }`
function store.new(opts)
  opts = opts or {}
  local self = setmetatable({ data_file = opts.data_file, random = opts.random or store.urandom }, Store)
  self:clear()
  return self
end

--- `n` bytes from /dev/urandom (nil when unavailable).
function store.urandom(n)
  local f = io.open("/dev/urandom", "rb")
  if not f then return nil end
  local bytes = f:read(n)
  f:close()
  return bytes
end

-- Used only when /dev/urandom cannot be read: a counter-driven generator
-- that keeps external ids unique within the store.
local fallback_state = 0
local function fallback_bytes(n)
  local out = {}
  for i = 1, n do
    fallback_state = (fallback_state * 1103515245 + 12345 + i) % 2147483648
    out[i] = string.char(math.floor(fallback_state / 65536) % 256)
  end
  return table.concat(out)
end

--- Removes every contact and restarts ids at 1.
function Store:clear()
  self.by_id, self.ids, self.sorted = {}, {}, true
  self.by_email, self.by_remote_id, self.by_external_id = {}, {}, {}
  self.next_id = 1
end

--- The number of contacts.
function Store:count()
  return #self.ids
end

--- The record with `id`, or nil.
function Store:get(id)
  return self.by_id[id]
end

--- Records whose email matches `email` case-insensitively, by id.
function Store:find_email(email)
  local set = self.by_email[email:lower()]
  local out = {}
  if set then
    for id in pairs(set) do out[#out + 1] = self.by_id[id] end
    table.sort(out, function(a, b) return a.id < b.id end)
  end
  return out
end

--- The record whose remote_id is exactly `remote_id`, or nil.
function Store:find_remote_id(remote_id)
  local id = self.by_remote_id[remote_id]
  return id and self.by_id[id]
end

--- All records, ordered by id.
function Store:all()
  if not self.sorted then
    table.sort(self.ids)
    self.sorted = true
  end
  local out = {}
  for i, id in ipairs(self.ids) do out[i] = self.by_id[id] end
  return out
end

function Store:new_external_id()
  while true do
    local bytes = self.random(16) or fallback_bytes(16)
    local hex = bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
    if not self.by_external_id[hex] then return hex end
  end
end

local function index(self, record)
  if record.email ~= "" then
    local key = record.email:lower()
    local set = self.by_email[key]
    if not set then
      set = {}
      self.by_email[key] = set
    end
    set[record.id] = true
  end
  if record.remote_id ~= "" then self.by_remote_id[record.remote_id] = record.id end
  self.by_external_id[record.external_id] = record.id
end

local function unindex(self, record, email, remote_id)
  if email ~= "" then
    local key = email:lower()
    local set = self.by_email[key]
    if set then
      set[record.id] = nil
      if next(set) == nil then self.by_email[key] = nil end
    end
  end
  if remote_id ~= "" and self.by_remote_id[remote_id] == record.id then self.by_remote_id[remote_id] = nil end
end

--- Adds a record, assigning an id (unless it has one) and an external id.
-- @treturn table the record
function Store:insert(record)
  if not record.id then
    record.id = self.next_id
  end
  if record.id >= self.next_id then self.next_id = record.id + 1 end
  if not record.external_id or record.external_id == "" then record.external_id = self:new_external_id() end
  if self.by_id[record.id] then self:delete(record.id) end
  self.by_id[record.id] = record
  if #self.ids > 0 and self.ids[#self.ids] > record.id then self.sorted = false end
  self.ids[#self.ids + 1] = record.id
  index(self, record)
  return record
end

--- Runs `change(record)` and keeps the indexes in step with what it changed.
function Store:update(record, change)
  local email, remote_id = record.email, record.remote_id
  local result = change(record)
  if record.email ~= email or record.remote_id ~= remote_id then
    unindex(self, record, email, remote_id)
    index(self, record)
  end
  return result
end

--- Removes the record with `id`.
function Store:delete(id)
  local record = self.by_id[id]
  if not record then return end
  unindex(self, record, record.email, record.remote_id)
  self.by_external_id[record.external_id] = nil
  self.by_id[id] = nil
  for i, v in ipairs(self.ids) do
    if v == id then
      table.remove(self.ids, i)
      break
    end
  end
end

---------------------------------------------------------------------------
-- The data file
---------------------------------------------------------------------------

--- The store as JSON-ready data.
function Store:export()
  local list = json.array()
  for _, r in ipairs(self:all()) do
    local copy = json.object()
    for k, v in pairs(r) do copy[k] = v end
    copy.custom_fields = json.object(contact.copy_map(r.custom_fields))
    copy.interests = json.array(contact.copy_map(r.interests))
    local nurtures = json.array()
    for i, n in ipairs(r.autoresponders) do nurtures[i] = { id = n.id, state = n.state } end
    copy.autoresponders = nurtures
    list[#list + 1] = copy
  end
  return { version = 1, next_id = self.next_id, contacts = list }
end

--- Replaces the contents with exported data.
function Store:import(data)
  if type(data) ~= "table" or type(data.contacts) ~= "table" then
    error("data file: expected {\"contacts\": [...]}", 0)
  end
  self:clear()
  for i, r in ipairs(data.contacts) do
    if type(r) ~= "table" or type(r.id) ~= "number" then error("data file: contact #" .. i .. " has no id", 0) end
    local record = contact.new()
    for k, v in pairs(r) do
      if v ~= json.null then record[k] = v end
    end
    record.id = math.tointeger and math.tointeger(r.id) or r.id
    self:insert(record)
  end
  if type(data.next_id) == "number" and data.next_id > self.next_id then
    self.next_id = math.tointeger and math.tointeger(data.next_id) or data.next_id
  end
end

--- Writes the data file atomically, if the store has one.
function Store:save()
  if not self.data_file then return true end
  local tmp = self.data_file .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(json.encode(self:export()), "\n")
  if ok then ok, werr = f:flush() end
  f:close()
  if not ok then
    os.remove(tmp)
    return nil, werr
  end
  local renamed, rerr = os.rename(tmp, self.data_file)
  if not renamed then return nil, rerr end
  return true
end

--- Loads the data file, if the store has one and it exists.
-- Raises when the file exists but cannot be read as a store.
function Store:load()
  if not self.data_file then return false end
  local f = io.open(self.data_file, "rb")
  if not f then return false end
  local text = f:read("*a")
  f:close()
  local data, err = json.decode(text)
  if data == nil then error("data file " .. self.data_file .. ": " .. tostring(err), 0) end
  self:import(data)
  return true
end

return store
