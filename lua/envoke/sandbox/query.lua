--- Query strings in the bracket syntax of docs/envoke-api.md §1.
--
-- `filter[email][$in][]=a&filter[email][$in][]=b&sort[id]=DESC` becomes
-- `{ filter = { email = { ["$in"] = { "a", "b" } } }, sort = { id = "DESC" } }`
-- plus the list of parameters in the order they came (sort keys keep it).
-- Numbered segments (`filter[$or][0][email]`) stay string keys; `query.list`
-- turns such a table into an array.
-- @module envoke.sandbox.query

local query = {}

local function unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "filter[email][$in][]" -> { "filter", "email", "$in", "" }
local function split_key(key)
  local base, rest = key:match("^([^%[]+)(.*)$")
  if not base then return nil end
  local path = { base }
  while rest ~= "" do
    local seg, after = rest:match("^%[([^%]]*)%](.*)$")
    if not seg then
      -- PHP keeps a malformed tail as part of the name; so do we.
      path[#path] = path[#path] .. rest
      break
    end
    path[#path + 1] = seg
    rest = after
  end
  return path
end

--- Parses a query string.
-- @tparam string|nil qs without the leading `?`
-- @treturn table|nil the nested parameters, or nil and a problem
-- @treturn table the parameters in order: `{ {path = {...}, value = "..."}, ... }`
function query.parse(qs)
  local params, ordered = {}, {}
  if not qs or qs == "" then return params, ordered end
  for pair in qs:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if not k then k, v = pair, "" end
    local path = split_key(unescape(k))
    if path then
      v = unescape(v)
      ordered[#ordered + 1] = { path = path, value = v }
      local node = params
      for i = 1, #path - 1 do
        local seg = path[i]
        if seg == "" then seg = #node + 1 end
        local child = node[seg]
        if child == nil then
          child = {}
          node[seg] = child
        elseif type(child) ~= "table" then
          return nil, "query parameter '" .. table.concat(path, "][") .. "' conflicts with an earlier one"
        end
        node = child
      end
      local last = path[#path]
      if last == "" then
        node[#node + 1] = v
      elseif type(node[last]) == "table" then
        return nil, "query parameter '" .. k .. "' conflicts with an earlier one"
      else
        node[last] = v -- a repeated plain parameter: the last one wins
      end
    end
  end
  return params, ordered
end

--- An array from a parsed value: arrays stay, tables keyed "0", "1", ...
-- are ordered by number, a single value becomes a one-item array.
-- @treturn table|nil
function query.list(v)
  if type(v) ~= "table" then return { v } end
  local keys, n = {}, 0
  for k in pairs(v) do
    n = n + 1
    local num = tonumber(k)
    if not num then return nil end
    keys[#keys + 1] = num
  end
  if n == #v then return v end
  table.sort(keys)
  local out = {}
  for _, num in ipairs(keys) do
    local item = v[num]
    if item == nil then item = v[tostring(num)] end
    if item == nil then item = v[("%d"):format(num)] end
    out[#out + 1] = item
  end
  return out
end

--- Whether a flag parameter is on: `1`, `true`, `yes`, `on` (any case).
function query.flag(v)
  if type(v) ~= "string" then return false end
  v = v:lower()
  return v == "1" or v == "true" or v == "yes" or v == "on"
end

return query
