--- Listing contacts: `filter`, `sort`, `limit`, `skip` and `fields`
-- (docs/envoke-api.md §3, `GET /v1/contacts`).
--
-- A filter is an object of field -> condition, all of which must hold.
-- A condition is a value (equality) or an object of operators
-- `$ne $in $regex $gt $gte $lt $lte`; `$and` / `$or` take a list of filters
-- and nest.  Fields are the contact's read fields and `custom_fields.<name>`
-- (also written `custom_fields[<name>]`).  Text compares case-insensitively
-- (as Envoke's MySQL collation would); `id` compares as a number, the
-- consent dates as dates; `interests` and `autoresponders` match when any of
-- the contact's names (or their ids) matches.
-- @module envoke.sandbox.filter

local schema = require "envoke.schema"
local contact = require "envoke.sandbox.contact"
local query = require "envoke.sandbox.query"
local regex = require "envoke.sandbox.regex"
local json = require "envoke.sandbox.json"

local filter = {}

local MAX_LIMIT, DEFAULT_LIMIT = 100, 10

-- How each field's values compare: "id", "datetime", "date", "list", "text".
local function kind_of(field)
  if field == "id" then return "id" end
  if field == "consent_effective_date" or field == "date_created" then return "datetime" end
  if field == "consent_expiry" then return "date" end
  if field == "interests" or field == "autoresponders" then return "list" end
  if field == "custom_fields" then return nil end
  local spec = schema.field(field)
  if not spec or spec.writeonly then return nil end
  return "text"
end

-- A raw filter value -> the comparable key for a kind, or nil, problem.
local function operand(kind, field, v)
  if type(v) == "table" or v == json.null then return nil, "filter on " .. field .. ": expected a value" end
  v = tostring(v)
  if kind == "id" then
    local n = tonumber(v)
    if not n then return nil, "filter on id: '" .. v .. "' is not a number" end
    return n
  elseif kind == "datetime" or kind == "date" then
    if v == "" then return false end -- "no date"
    local t = schema.time.parse_datetime(v) or schema.time.parse_date(v)
    if not t then return nil, "filter on " .. field .. ": '" .. v .. "' is not a date or RFC 3339 date-time" end
    if kind == "date" then t = math.floor(t / 86400) * 86400 end
    return t
  elseif field == "consent_status" then
    return (schema.consent.canonical(v) or v):lower()
  end
  return v:lower()
end

-- The record's comparable key(s) for a field.
local function subject(record, field, kind, now, cat)
  if kind == "id" then return record.id end
  if kind == "datetime" then
    if field == "date_created" then return record.created or false end
    return record.consent_effective or false
  end
  if kind == "date" then
    return record.consent_expires and math.floor(record.consent_expires / 86400) * 86400 or false
  end
  if kind == "list" then
    local out = {}
    local ns = field == "interests" and cat.interests or cat.nurtures
    local list = record[field]
    for i, item in ipairs(list) do
      local id = type(item) == "table" and item.id or item
      local entry = ns.by_id[id]
      out[i] = { name = entry and entry.name:lower() or id, id = id }
    end
    return out
  end
  return tostring(contact.value(record, field, now, cat)):lower()
end

local ORDERED = { ["$gt"] = true, ["$gte"] = true, ["$lt"] = true, ["$lte"] = true }

local function compare(op, a, b)
  if op == "$gt" then return a > b end
  if op == "$gte" then return a >= b end
  if op == "$lt" then return a < b end
  return a <= b
end

-- One operator on one field -> predicate(record, now, cat).
local compile_op

local function regex_op(field, kind, raw)
  if type(raw) ~= "string" then return nil, "filter on " .. field .. ": $regex needs a string" end
  local re, why = regex.compile(raw)
  if not re then return nil, "filter on " .. field .. ": $regex " .. why end
  return function(record, now, cat)
    local s = subject(record, field, kind, now, cat)
    if kind == "list" then
      for _, item in ipairs(s) do
        if regex.find(re, item.name) then return true end
      end
      return false
    end
    if type(s) ~= "string" then s = kind == "id" and tostring(s) or contact.value(record, field, now, cat) end
    local found, err = regex.find(re, s)
    if found == nil then error({ filter = "filter on " .. field .. ": $regex " .. err }, 0) end
    return found
  end
end

local function in_op(field, kind, raw)
  local list = query.list(raw)
  if not list then return nil, "filter on " .. field .. ": $in needs a list" end
  local preds = {}
  for _, item in ipairs(list) do
    local p, why = compile_op(field, kind, "$eq", item)
    if not p then return nil, why end
    preds[#preds + 1] = p
  end
  return function(record, now, cat)
    for _, p in ipairs(preds) do
      if p(record, now, cat) then return true end
    end
    return false
  end
end

-- $eq or $ne on a list: whether any of its names or ids is the value.
local function list_op(field, op, raw)
  if ORDERED[op] then return nil, "filter on " .. field .. ": " .. op .. " does not apply to a list" end
  if type(raw) == "table" then return nil, "filter on " .. field .. ": expected a value" end
  local want = tostring(raw):lower()
  local function has(record, now, cat)
    for _, item in ipairs(subject(record, field, "list", now, cat)) do
      if item.name == want or item.id == want then return true end
    end
    return false
  end
  if op == "$ne" then return function(...) return not has(...) end end
  return has
end

local function value_op(field, kind, op, raw)
  local want, why = operand(kind, field, raw)
  if want == nil then return nil, why end
  if op == "$eq" then
    return function(record, now, cat) return subject(record, field, kind, now, cat) == want end
  elseif op == "$ne" then
    return function(record, now, cat) return subject(record, field, kind, now, cat) ~= want end
  end
  return function(record, now, cat)
    local have = subject(record, field, kind, now, cat)
    -- A missing date is neither before nor after anything.
    if have == false or want == false then return false end
    return compare(op, have, want)
  end
end

function compile_op(field, kind, op, raw)
  if op == "$regex" then return regex_op(field, kind, raw) end
  if op == "$in" then return in_op(field, kind, raw) end
  if op ~= "$eq" and op ~= "$ne" and not ORDERED[op] then
    return nil, "filter on " .. field .. ": unknown operator '" .. op .. "'"
  end
  if kind == "list" then return list_op(field, op, raw) end
  return value_op(field, kind, op, raw)
end

local function all_of(preds)
  return function(record, now, cat)
    for _, p in ipairs(preds) do
      if not p(record, now, cat) then return false end
    end
    return true
  end
end

local function has_operators(t)
  for k in pairs(t) do
    if type(k) == "string" and k:sub(1, 1) == "$" then return true end
  end
  return false
end

local compile_node

local function compile_field(field, cond, cat)
  -- custom_fields[barcode]=... nests; custom_fields.barcode=... is a path.
  if field == "custom_fields" and type(cond) == "table" and not has_operators(cond) then
    local preds = {}
    for name, sub in pairs(cond) do
      local p, why = compile_field("custom_fields." .. tostring(name), sub, cat)
      if not p then return nil, why end
      preds[#preds + 1] = p
    end
    return all_of(preds)
  end
  local kind = kind_of(field)
  if not kind then return nil, "filter: unknown field '" .. field .. "'" end
  if kind == "text" and field:find("^custom_fields%.") and not cat:custom_field(field:sub(15)) then
    return nil, "filter: '" .. field:sub(15) .. "' is not a custom field of this account"
  end
  if type(cond) ~= "table" then return compile_op(field, kind, "$eq", cond) end
  if not has_operators(cond) then return nil, "filter on " .. field .. ": expected a value or operators" end
  local preds = {}
  for op, raw in pairs(cond) do
    local p, why = compile_op(field, kind, op, raw)
    if not p then return nil, why end
    preds[#preds + 1] = p
  end
  return all_of(preds)
end

function compile_node(node, cat)
  if type(node) ~= "table" then return nil, "filter: expected an object of field -> condition" end
  local preds = {}
  for key, cond in pairs(node) do
    local p, why
    if key == "$and" or key == "$or" then
      local list = query.list(cond)
      if not list or #list == 0 then return nil, "filter: " .. key .. " needs a list of filters" end
      local subs = {}
      for _, sub in ipairs(list) do
        local sp, swhy = compile_node(sub, cat)
        if not sp then return nil, swhy end
        subs[#subs + 1] = sp
      end
      if key == "$and" then
        p = all_of(subs)
      else
        p = function(record, now, c)
          for _, sp in ipairs(subs) do
            if sp(record, now, c) then return true end
          end
          return false
        end
      end
    elseif type(key) == "string" and key:sub(1, 1) == "$" then
      return nil, "filter: unknown operator '" .. key .. "'"
    else
      p, why = compile_field(tostring(key), cond, cat)
      if not p then return nil, why end
    end
    preds[#preds + 1] = p
  end
  return all_of(preds)
end

--- Compiles the `filter` parameter.
-- @param f the parsed parameter: a table, or a JSON object as text
-- @treturn function|nil predicate(record, now, catalogue), or nil and a problem
function filter.compile(f, cat)
  if f == nil then return function() return true end end
  if type(f) == "string" then
    local decoded = f ~= "" and json.decode(f)
    if type(decoded) ~= "table" then return nil, "filter: expected filter[field]=value or a JSON object" end
    f = decoded
  end
  return compile_node(f, cat)
end

local function sort_key(record, field, kind, now, cat)
  local v = subject(record, field, kind, now, cat)
  if v == false then return -math.huge end
  return v
end

--- Compiles `sort[field]=ASC|DESC` parameters (in the order given).
-- @tparam table ordered the query's parameters in order (see `envoke.sandbox.query`)
-- @treturn function|nil less(a, b, now, cat), or nil and a problem
function filter.sorter(ordered)
  local keys = {}
  for _, p in ipairs(ordered) do
    if p.path[1] == "sort" then
      local field = table.concat(p.path, ".", 2)
      local kind = field ~= "" and kind_of(field)
      if not kind or kind == "list" then return nil, "sort: cannot sort by '" .. field .. "'" end
      local dir = p.value:upper()
      if dir ~= "ASC" and dir ~= "DESC" then
        return nil, "sort[" .. field .. "] must be ASC or DESC"
      end
      keys[#keys + 1] = { field = field, kind = kind, desc = dir == "DESC" }
    end
  end
  return function(a, b, now, cat)
    for _, k in ipairs(keys) do
      local x, y = sort_key(a, k.field, k.kind, now, cat), sort_key(b, k.field, k.kind, now, cat)
      if type(x) ~= type(y) then x, y = tostring(x), tostring(y) end
      if x ~= y then
        if k.desc then return x > y end
        return x < y
      end
    end
    return a.id < b.id
  end
end

local function whole(v, name, min, max)
  if v == nil then return nil end
  if type(v) ~= "string" or not v:find("^%d+$") then
    return nil, name .. " must be an integer from " .. min .. (max and " to " .. max or " up")
  end
  local n = tonumber(v)
  if n < min or (max and n > max) then
    return nil, name .. " must be an integer from " .. min .. (max and " to " .. max or " up")
  end
  return n
end

--- Runs a list request.
-- @tparam table records all records, by id
-- @tparam table params the parsed query
-- @tparam table ordered the query's parameters in order
-- @treturn table|nil the answer (a JSON array of contacts), or nil and the problems
function filter.list(records, params, ordered, now, cat)
  local problems = {}
  local pred, why = filter.compile(params.filter, cat)
  if not pred then problems[#problems + 1] = why end
  local less, swhy = filter.sorter(ordered)
  if not less then problems[#problems + 1] = swhy end
  local limit, lwhy = whole(params.limit, "limit", 1, MAX_LIMIT)
  if lwhy then problems[#problems + 1] = lwhy end
  local skip, kwhy = whole(params.skip, "skip", 0)
  if kwhy then problems[#problems + 1] = kwhy end
  local fields
  if params.fields ~= nil then
    fields, why = filter.fields(params.fields)
    if not fields then problems[#problems + 1] = why end
  end
  if #problems > 0 then return nil, problems end

  local ok, result = pcall(function()
    local hits = {}
    for _, r in ipairs(records) do
      if pred(r, now, cat) then hits[#hits + 1] = r end
    end
    table.sort(hits, function(a, b) return less(a, b, now, cat) end)
    return hits
  end)
  if not ok then
    if type(result) == "table" and result.filter then return nil, { result.filter } end
    error(result, 0)
  end
  local out = json.array()
  local first = (skip or 0) + 1
  for i = first, math.min(#result, first + (limit or DEFAULT_LIMIT) - 1) do
    out[#out + 1] = contact.view(result[i], now, cat, fields)
  end
  return out
end

--- Parses `fields=a,b`.
-- @treturn table|nil field names, or nil and a problem
function filter.fields(v)
  if type(v) == "table" then v = table.concat(query.list(v) or {}, ",") end
  local out, unknown = {}, {}
  for name in tostring(v):gmatch("[^,%s]+") do
    local spec = schema.fields[name]
    if spec and not spec.writeonly then
      out[#out + 1] = name
    else
      unknown[#unknown + 1] = name
    end
  end
  if #unknown > 0 then return nil, "fields: unknown field(s) " .. table.concat(unknown, ", ") end
  if #out == 0 then return nil, "fields: name at least one field" end
  return out
end

return filter
