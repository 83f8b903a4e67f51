--- The sandbox's state beyond contacts (docs/envoke-api.md §8): metadata of
-- tags and subscriptions, interest groups, custom fields with ids and types,
-- hooks and their deliveries, messages and what was sent. It lives in
-- `sb.extra`, made on first use and dropped by a reset, which also restores
-- the catalogue when v2 calls changed it (the catalogue is copied on the first
-- change, so a catalogue given at start is never altered).
-- @module envoke.sandbox.account

local account = {}

-- The groups tags and subscriptions may name: Envoke refuses a group it
-- does not know, and the sandbox has no groups API (controls add more).
local DEFAULT_GROUPS = {
  { id = 1, name = "Events", type = "interest" },
  { id = 2, name = "Sales channel", type = "interest" },
  { id = 3, name = "Newsletters", type = "subscription" },
}

--- The sandbox's extra state (made on first use).
function account.state(sb)
  local st = sb.extra
  if st then return st end
  st = {
    meta = {},                                   -- interest id -> { external_id, group, description, ... }
    groups = { list = {}, by_id = {}, by_name = {}, next_id = 1 },
    fields = nil,                                -- custom fields: made from the catalogue on first use
    hooks = { list = {} },                       -- in creation order
    deliveries = {}, next_delivery = 1,
    queue = {},                                  -- deliveries waiting (pending or to retry)
    messages = { list = {}, by_id = {}, next_id = 1001 },
    sent = {},                                   -- one entry per email sent
  }
  sb.extra = st
  for _, g in ipairs(DEFAULT_GROUPS) do account.add_group(sb, g.type, g.name) end
  return st
end

--- Adds an interest group (`type` "interest" or "subscription"); returns it.
function account.add_group(sb, kind, name)
  local groups = account.state(sb).groups
  local g = { id = groups.next_id, name = name, type = kind }
  groups.next_id = groups.next_id + 1
  groups.list[#groups.list + 1] = g
  groups.by_id[g.id] = g
  groups.by_name[name:lower()] = g
  return g
end

--- The group named or numbered `key`, or nil.
function account.group(sb, key)
  local groups = account.state(sb).groups
  if type(key) == "number" then return groups.by_id[key] end
  if type(key) ~= "string" then return nil end
  if key:find("^%d+$") then return groups.by_id[tonumber(key)] end
  return groups.by_name[key:lower()]
end

local function clone_namespace(ns)
  local out = { list = {}, by_id = {}, by_name = {} }
  for i, e in ipairs(ns.list) do
    local c = { id = e.id, name = e.name, kind = e.kind }
    out.list[i] = c
    out.by_id[c.id] = c
    out.by_name[c.name:lower()] = c
  end
  return out
end

--- The catalogue, ready to be changed: copied on the first change since the
-- last reset, so the one the sandbox started with stays as it was.
function account.writable_catalogue(sb)
  local st = account.state(sb)
  if st.copy and sb.cat == st.copy then return sb.cat end
  local cat = sb.cat
  local copy = setmetatable({}, getmetatable(cat))
  for k, v in pairs(cat) do copy[k] = v end
  copy.interests = clone_namespace(cat.interests)
  copy.custom_fields, copy.custom_by_name = {}, {}
  for i, name in ipairs(cat.custom_fields) do copy.custom_fields[i] = name end
  for k, v in pairs(cat.custom_by_name) do copy.custom_by_name[k] = v end
  st.original, st.copy = cat, copy
  sb.cat = copy
  return copy
end

--- Drops the extra state and undoes v2 changes to the catalogue (unless a
-- reset just gave a new catalogue).
function account.reset(sb)
  local st = sb.extra
  if st and st.copy and sb.cat == st.copy then sb.cat = st.original end
  sb.extra = nil
end

--- "YYYY-MM-DD HH:MM:SS" (UTC) of an epoch time, as Envoke's v2 dates read.
function account.timestamp(t)
  return os.date("!%Y-%m-%d %H:%M:%S", t)
end

return account
