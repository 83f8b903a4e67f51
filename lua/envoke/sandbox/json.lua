--- JSON for the sandbox: cjson.safe decodes; a small encoder writes.
--
-- Debian's lua-cjson 2.1.0 encodes every empty table as `{}` and cannot keep
-- key order, but the contact object needs `[]` for empty interests and lists
-- and reads best in Envoke's field order.  Tables are therefore tagged:
-- `json.array(t)` always encodes as an array, `json.object(t, order)` as an
-- object with `order`'s keys first.  Untagged tables are arrays when they
-- are non-empty sequences, objects (keys sorted) otherwise.
-- @module envoke.sandbox.json

local cjson = require "cjson.safe"

local json = {}

--- The value JSON `null` decodes to.
json.null = cjson.null

local ARRAY = { __name = "json.array" }
local orders = setmetatable({}, { __mode = "k" })
local PLAIN_OBJECT = { __name = "json.object" }

--- Tags `t` (or a new table) as a JSON array.
function json.array(t)
  return setmetatable(t or {}, ARRAY)
end

--- Tags `t` (or a new table) as a JSON object whose keys listed in `order`
-- come first, in that order; other keys follow sorted.
function json.object(t, order)
  local mt = PLAIN_OBJECT
  if order then
    mt = orders[order]
    if not mt then
      mt = { __name = "json.object", order = order }
      orders[order] = mt
    end
  end
  return setmetatable(t or {}, mt)
end

--- Decodes JSON text.
-- @treturn any|nil the value, or nil and a message
function json.decode(text)
  local value, err = cjson.decode(text)
  if value == nil and err then return nil, err end
  return value
end

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
for i = 0, 31 do
  local c = string.char(i)
  if not ESCAPES[c] then ESCAPES[c] = ("\\u%04x"):format(i) end
end
ESCAPES["\127"] = "\\u007f"

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', ESCAPES) .. '"'
end

local function encode_number(n)
  if n ~= n or n == math.huge or n == -math.huge then
    error("cannot encode " .. tostring(n) .. " as JSON")
  end
  if n == math.floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then
    return ("%d"):format(n)
  end
  return ("%.17g"):format(n)
end

local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then return false end
  end
  return true
end

local function key_text(k)
  if type(k) == "string" then return k end
  if type(k) == "number" then return encode_number(k) end
  error("cannot encode a " .. type(k) .. " key as JSON")
end

local encode_value

local function encode_array(t, out, depth)
  out[#out + 1] = "["
  for i = 1, #t do
    if i > 1 then out[#out + 1] = "," end
    encode_value(t[i], out, depth)
  end
  out[#out + 1] = "]"
end

local function encode_object(t, order, out, depth)
  local seen, keys = {}, {}
  if order then
    for _, k in ipairs(order) do
      if t[k] ~= nil then
        keys[#keys + 1] = k
        seen[k] = true
      end
    end
  end
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then rest[#rest + 1] = key_text(k) end
  end
  table.sort(rest)
  for _, k in ipairs(rest) do
    keys[#keys + 1] = k
  end
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = encode_string(k)
    out[#out + 1] = ":"
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    encode_value(v, out, depth)
  end
  out[#out + 1] = "}"
end

function encode_value(v, out, depth)
  local kind = type(v)
  if kind == "string" then
    out[#out + 1] = encode_string(v)
  elseif kind == "number" then
    out[#out + 1] = encode_number(v)
  elseif kind == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == json.null then
    out[#out + 1] = "null"
  elseif kind == "table" then
    if depth > 100 then error("JSON nesting too deep") end
    local mt = getmetatable(v)
    if mt == ARRAY then
      encode_array(v, out, depth + 1)
    elseif mt and mt.__name == "json.object" then
      encode_object(v, mt.order, out, depth + 1)
    elseif is_sequence(v) then
      encode_array(v, out, depth + 1)
    else
      encode_object(v, nil, out, depth + 1)
    end
  else
    error("cannot encode a " .. kind .. " as JSON")
  end
end

--- Encodes a value as JSON text.
function json.encode(v)
  local out = {}
  encode_value(v, out, 0)
  return table.concat(out)
end

return json
