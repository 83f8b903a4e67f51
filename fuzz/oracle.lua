-- oracle.lua: what the fuzzers check, in Lua 5.4 inside the fuzzer's own
-- state. Each check raises when envoke.core and lua-cjson (the decoder the
-- library reads answers with) disagree in a way that is not documented.
-- Loaded by fuzz/harness.c; returns the checks by name.

local core = require "envoke.core"
local cjson = require "cjson.safe"       -- default settings, as the client uses it
local strict = cjson.new()               -- the same, but refusing numbers JSON does not have
strict.decode_invalid_numbers(false)

local null, empty_array, array_mt = core.null, core.empty_array, core.array_mt
local MAX_DEPTH = 100
local TWO53 = 2 ^ 53

local oracle = {}

local function fail(fmt, ...)
  error(string.format(fmt, ...), 0)
end

local function show(s)
  s = tostring(s)
  if #s > 300 then s = s:sub(1, 300) .. "..." end
  return string.format("%q", s)
end

---------------------------------------------------------------- json_encode

-- Whether json_encode must accept v: the rules of the README, written again
-- independently of src/json_encode.c (raw access only, as the encoder never runs
-- Lua code).
local encodable

local function index_of(k)
  if math.type(k) == "integer" then return k >= 1 and k or nil end
  if math.type(k) == "float" and k >= 1 and k == math.floor(k) and k < TWO53 then return math.tointeger(k) end
  return nil
end

local function table_encodable(t, depth, open)
  if depth >= MAX_DEPTH or open[t] then return false end  -- depth: tables open above t
  local strings, count, max_index = 0, 0, 0
  for k in next, t do
    if type(k) == "string" then
      if not utf8.len(k) then return false end
      strings = strings + 1
    else
      local i = index_of(k)
      if not i then return false end
      if i > max_index then max_index = i end
    end
    count = count + 1
  end
  if strings > 0 and strings < count then return false end
  if strings > 0 and debug.getmetatable(t) == array_mt then return false end
  if strings == 0 and max_index ~= count then return false end
  open[t] = true
  for _, v in next, t do
    if not encodable(v, depth + 1, open) then open[t] = nil return false end
  end
  open[t] = nil
  return true
end

encodable = function(v, depth, open)
  local t = type(v)
  if t == "nil" or t == "boolean" then return true end
  if t == "number" then return math.type(v) == "integer" or (v == v and v ~= math.huge and v ~= -math.huge) end
  if t == "string" then return utf8.len(v) ~= nil end
  if t == "userdata" then return v == null or v == empty_array end
  if t == "table" then return table_encodable(v, depth, open) end
  return false
end

-- Whether cjson's decoding d of the text of v equals v.
local same

local function same_table(v, d, path)
  if type(d) ~= "table" then fail("%s: a table came back as %s", path, type(d)) end
  local n = 0
  for k, x in next, v do
    local key = index_of(k) or k
    same(x, rawget(d, key), path .. "[" .. tostring(key) .. "]")
    n = n + 1
  end
  for _ in next, d do n = n - 1 end
  if n ~= 0 then fail("%s: cjson decoded a different number of members", path) end
end

same = function(v, d, path)
  if v == nil or v == null then
    if d ~= cjson.null then fail("%s: null came back as %s", path, tostring(d)) end
  elseif v == empty_array then
    if type(d) ~= "table" or next(d) ~= nil then fail("%s: [] came back as %s", path, tostring(d)) end
  elseif math.type(v) == "integer" then
    -- cjson 2.1.0 reads every number as a double: the nearest one to v.
    if d ~= v and d ~= v + 0.0 then fail("%s: %d came back as %s", path, v, tostring(d)) end
  elseif type(v) == "number" then
    if d ~= v or (v == 0 and 1 / v ~= 1 / d) then fail("%s: %.17g came back as %s", path, v, tostring(d)) end
  elseif type(v) == "table" then
    same_table(v, d, path)
  elseif v ~= d then
    fail("%s: %s came back as %s", path, show(v), show(d))
  end
end

-- The encoder's verdict on v must be the model's, and what it writes must be
-- JSON that cjson reads back as v and that json_members accepts.
function oracle.encode(v)
  local ok, text = pcall(core.json_encode, v)
  local expected = encodable(v, 0, {})
  if not ok then
    text = tostring(text)
    if expected then fail("json_encode refused an encodable value: %s", text) end
    if not text:find("^envoke%.core: cannot encode JSON: %$") then fail("refusal without a path: %s", show(text)) end
    return
  end
  if not expected then fail("json_encode accepted a value it must refuse: %s", show(text)) end
  if not utf8.len(text) then fail("json_encode wrote invalid UTF-8: %s", show(text)) end
  if text:find("[%z\1-\31]") then fail("json_encode wrote a raw control character: %s", show(text)) end
  local d, err = cjson.decode(text)
  if d == nil then fail("cjson cannot decode json_encode's %s: %s", show(text), err) end
  same(v, d, "$")
  local valid, member = core.json_members('{"v":' .. text .. "}", "v")
  if valid then
    if member ~= text then fail("json_members read back %s for %s", show(member), show(text)) end
  elseif not member:find("nested too deep", 1, true) then
    -- An empty array at the encoder's deepest level is one level more than the scanner allows.
    fail("json_members refused json_encode's %s: %s", show(text), member)
  end
end

--------------------------------------------------------------- json_members

-- The names json_members is asked for: plain, empty, non-ASCII, with a NUL.
local NAMES = { "a", "b", "success", "result_data", "", "é", "a\0b", "😀" }

local function first_invalid_utf8(text, pos)
  return utf8.len(text, pos, pos) == nil
end

-- Whether a '.' lacks a digit on either side (1. or -.5): strtod takes those,
-- so cjson does even when it refuses other numbers JSON does not have.
local function has_lax_point(text)
  for i in text:gmatch("()%.") do
    if not text:sub(i - 1, i - 1):find("^%d$") or not text:sub(i + 1, i + 1):find("^%d$") then return true end
  end
  return false
end

-- Why json_members may refuse a text cjson accepts: the differences the
-- specs document (json_members is stricter, cjson laxer than RFC 8259).
local function explained(text, msg)
  if msg == "not a JSON object" then return not text:find("^[ \t\r\n]*{") end
  if strict.decode(text) == nil then return true end  -- a number JSON does not have (01, 0x1, +1, inf, nan)
  local pos, why = msg:match("^invalid JSON at byte (%d+): (.+)$")
  pos = tonumber(pos)
  local byte = text:byte(pos)
  if why:find("^control character") then return byte ~= nil and byte < 0x20 end
  if why:find("^invalid UTF%-8") then return byte ~= nil and first_invalid_utf8(text, pos) end
  if why:find("^nested too deep") then
    local _, opens = text:gsub("[%[{]", "")
    return opens > MAX_DEPTH
  end
  if why:find("^unexpected text after") then return byte == 0 end  -- cjson stops at a NUL
  if why:find("^invalid number") then return has_lax_point(text) end
  return false
end

local function deep_equal(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in next, a do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in next, b do
    if a[k] == nil then return false end
  end
  return true
end

local function check_members(text, r, decoded)
  if type(decoded) ~= "table" then fail("json_members accepted %s, cjson reads %s", show(text), type(decoded)) end
  for i, name in ipairs(NAMES) do
    local raw, want = r[i + 2], rawget(decoded, name)
    if want == nil then
      if raw ~= nil then fail("member %s: json_members found %s, cjson nothing", show(name), show(raw)) end
    else
      if raw == nil then fail("member %s: json_members found nothing in %s", show(name), show(text)) end
      local got, err = cjson.decode(raw)
      if got == nil then fail("member %s: cjson cannot decode %s: %s", show(name), show(raw), err) end
      if not deep_equal(got, want) then fail("member %s: %s differs from cjson's", show(name), show(raw)) end
    end
  end
end

-- json_members on text must agree with cjson: what it accepts cjson decodes,
-- member for member; what it refuses cjson refuses too, or the refusal is one
-- of the documented differences. c_verdict is what the C entry point said on
-- the same bytes (its error message, or false when it accepted).
function oracle.members(text, c_verdict)
  local r = table.pack(pcall(core.json_members, text, table.unpack(NAMES)))
  if not r[1] then fail("json_members raised: %s", tostring(r[2])) end
  local decoded, cjson_err = cjson.decode(text)
  if r[2] == true then
    if c_verdict then fail("the C scanner refused what the Lua call accepted: %s", c_verdict) end
    if decoded == nil then
      fail("json_members accepted %s, cjson refuses it: %s", show(text), tostring(cjson_err))
    end
    return check_members(text, r, decoded)
  end
  local msg = r[3]
  if r[2] ~= nil or type(msg) ~= "string" then fail("json_members answered %s, %s", tostring(r[2]), tostring(msg)) end
  if msg ~= c_verdict then fail("the C scanner said %s, the Lua call %s", tostring(c_verdict), msg) end
  if msg ~= "not a JSON object" then
    local pos = tonumber(msg:match("^invalid JSON at byte (%d+): %S"))
    if not pos or pos < 1 or pos > #text + 1 then fail("a refusal without a position in the text: %s", msg) end
  end
  if decoded ~= nil and not explained(text, msg) then
    fail("json_members refused %s (%s), cjson accepts it", show(text), msg)
  end
end

return oracle
