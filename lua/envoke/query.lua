--- URL paths and query strings in the bracket syntax of docs/envoke-api.md §1.
--
--    query.encode{ filter = { email = { ["$in"] = { "a@x.org", "b@x.org" } } }, limit = 10 }
--    --> "filter%5Bemail%5D%5B%24in%5D%5B%5D=a%40x.org&filter%5Bemail%5D%5B%24in%5D%5B%5D=b%40x.org&limit=10"
--
-- Every key and value is percent-encoded, so no value can change the shape
-- of the request. Keys come out sorted, so the same query is the same text.
-- @module envoke.query
local raise = require("envoke.errors").raise

local query = {}

-- Deeper than any filter a person writes; a cycle would otherwise recurse forever.
local MAX_DEPTH = 16

local format, byte, gsub = string.format, string.byte, string.gsub

local function escape_byte(c)
  return format("%%%02X", byte(c))
end

--- Percent-encodes everything but RFC 3986's unreserved characters.
-- @tparam string s
-- @treturn string
-- @local
function query.escape(s)
  return (gsub(s, "[^%w%-%._~]", escape_byte))
end

local function scalar(v, where)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      raise("query value at %s is not a finite number", where)
    end
    if v == math.floor(v) and v > -2^53 and v < 2^53 then return format("%d", v) end
    return format("%.17g", v)
  end
  if t == "boolean" then return v and "1" or "0" end
  raise("query value at %s must be a string, number or boolean, got %s", where, t)
end

local function is_list(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" then return false end
    n = n + 1
  end
  return n > 0 and #t == n
end

local function sorted_keys(t, where)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then
      raise("query key %s in %s must be a string", tostring(k), where)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

-- Appends "key=value" pairs for v under the already-bracketed name.
-- `depth` counts the tables above v, so a cyclic table stops with an error.
local function add(parts, name, v, depth)
  if type(v) ~= "table" then
    parts[#parts + 1] = query.escape(name) .. "=" .. query.escape(scalar(v, name))
    return
  end
  if depth >= MAX_DEPTH then raise("query value at %s is nested too deep (a cycle?)", name) end
  if is_list(v) then
    for i, item in ipairs(v) do
      if type(item) == "table" then
        add(parts, name .. "[" .. (i - 1) .. "]", item, depth + 1) -- lists of objects: $and, $or
      else
        add(parts, name .. "[]", item, depth + 1)
      end
    end
  else
    for _, k in ipairs(sorted_keys(v, name)) do
      if k:find("[%[%]]") then raise("query key '%s' in %s must not hold '[' or ']'", k, name) end
      add(parts, name .. "[" .. k .. "]", v[k], depth + 1)
    end
  end
end

-- The operators Envoke's filters take on a field, and on a list of filters.
local FIELD_OPS = { ["$eq"] = true, ["$ne"] = true, ["$in"] = true, ["$regex"] = true,
                    ["$gt"] = true, ["$gte"] = true, ["$lt"] = true, ["$lte"] = true }
local LIST_OPS = { ["$and"] = true, ["$or"] = true }

local check_node

local function check_condition(cond, where, seen)
  if type(cond) ~= "table" then return end
  if seen[cond] then raise("%s refers to itself (a cycle)", where) end
  seen[cond] = true
  for op, v in pairs(cond) do
    if not FIELD_OPS[op] then
      raise("%s: unknown operator '%s' (use one of $eq $ne $in $regex $gt $gte $lt $lte)", where, tostring(op))
    end
    if type(v) == "table" and (op ~= "$in" or not (next(v) == nil or is_list(v))) then
      raise("%s[%s] must be a %s", where, op, op == "$in" and "list of values" or "value, not a table")
    end
  end
  seen[cond] = nil
end

-- Checks a filter node (field -> condition, $and/$or -> list of nodes) before
-- anything is encoded: a key that could forge an operator, an unknown
-- operator or a cycle raises here, naming where in the filter it is.
function check_node(node, where, seen, depth)
  if type(node) ~= "table" then raise("%s must be a table of field -> condition", where) end
  if seen[node] then raise("%s refers to itself (a cycle)", where) end
  if depth > MAX_DEPTH then raise("%s is nested too deep", where) end
  seen[node] = true
  for k, v in pairs(node) do
    if type(k) ~= "string" then raise("%s: keys must be field names, got %s", where, type(k)) end
    local at = where .. "." .. k
    if LIST_OPS[k] then
      if type(v) ~= "table" or not is_list(v) then raise("%s must be a list of filters", at) end
      for i, sub in ipairs(v) do check_node(sub, at .. "[" .. i .. "]", seen, depth + 1) end
    elseif k:sub(1, 1) == "$" then
      raise("%s: unknown operator '%s' (only $and and $or join filters)", where, k)
    elseif k == "" or k:find("[%[%]]") then
      raise("%s: field name '%s' must not be empty or hold '[' or ']'", where, k)
    else
      check_condition(v, at, seen)
    end
  end
  seen[node] = nil
end

--- Checks a filter table: raises (at the caller's line) on anything that
-- would not reach Envoke as written.
-- @tparam table filter
-- @local
function query.check_filter(filter)
  check_node(filter, "filter", {}, 0)
end

--- Encodes a table of parameters as a query string (no leading `?`).
-- Nested tables become bracket paths; lists of scalars `[]`, lists of tables `[0]`, `[1]`.
-- @tparam table params
-- @treturn string
-- @local
function query.encode(params)
  local parts = {}
  for _, k in ipairs(sorted_keys(params, "query")) do
    add(parts, k, params[k], 0)
  end
  return table.concat(parts, "&")
end

--- A path with a query string appended when params has any.
-- @local
function query.path(path, params)
  if params == nil or next(params) == nil then return path end
  return path .. "?" .. query.encode(params)
end

return query
