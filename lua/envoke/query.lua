--- URL paths and query strings in the bracket syntax of docs/envoke-api.md §1.
--
--    query.encode{ filter = { email = { ["$in"] = { "a@x.org", "b@x.org" } } }, limit = 10 }
--    --> "filter%5Bemail%5D%5B%24in%5D%5B%5D=a%40x.org&filter%5Bemail%5D%5B%24in%5D%5B%5D=b%40x.org&limit=10"
--
-- Every key and value is percent-encoded, so no value can change the shape
-- of the request. Keys come out sorted, so the same query is the same text.
-- @module envoke.query
local query = {}

local format, byte, gsub = string.format, string.byte, string.gsub

local function escape_byte(c)
  return format("%%%02X", byte(c))
end

--- Percent-encodes everything but RFC 3986's unreserved characters.
-- @tparam string s
-- @treturn string
function query.escape(s)
  return (gsub(s, "[^%w%-%._~]", escape_byte))
end

local function scalar(v, where)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      error(format("envoke: query value at %s is not a finite number", where), 4)
    end
    if v == math.floor(v) and v > -2^53 and v < 2^53 then return format("%d", v) end
    return format("%.17g", v)
  end
  if t == "boolean" then return v and "1" or "0" end
  error(format("envoke: query value at %s must be a string, number or boolean, got %s", where, t), 4)
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
      error(format("envoke: query key %s in %s must be a string", tostring(k), where), 5)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

-- Appends "key=value" pairs for v under the already-bracketed name.
local function add(parts, name, v)
  if type(v) ~= "table" then
    parts[#parts + 1] = query.escape(name) .. "=" .. query.escape(scalar(v, name))
  elseif is_list(v) then
    for i, item in ipairs(v) do
      if type(item) == "table" then
        add(parts, name .. "[" .. (i - 1) .. "]", item) -- lists of objects: $and, $or
      else
        add(parts, name .. "[]", item)
      end
    end
  else
    for _, k in ipairs(sorted_keys(v, name)) do
      add(parts, name .. "[" .. k .. "]", v[k])
    end
  end
end

--- Encodes a table of parameters as a query string (no leading `?`).
-- Nested tables become bracket paths; lists of scalars `[]`, lists of tables `[0]`, `[1]`.
-- @tparam table params
-- @treturn string
function query.encode(params)
  local parts = {}
  for _, k in ipairs(sorted_keys(params, "query")) do
    add(parts, k, params[k])
  end
  return table.concat(parts, "&")
end

--- A path with a query string appended when params has any.
function query.path(path, params)
  if params == nil or next(params) == nil then return path end
  return path .. "?" .. query.encode(params)
end

return query
