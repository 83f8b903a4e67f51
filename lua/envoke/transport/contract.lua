--- The transport contract, written once for every Lua transport (ngx,
-- haproxy, in_process): the request checks, the base URL, the defaults and the
-- user agent. The C pool (`envoke.core`) keeps the same rules in C;
-- spec/transport/contract_spec.lua runs one misuse table against all of them.
--
-- Results: `request` answers `status, body, headers` (any HTTP status) or
-- `nil, err`; `finished` the same after the request's id. A transport may take
-- a fifth argument, `envelope` (the request is a write whose answer is an
-- Envoke envelope), and answer a 2xx holding a good envelope (`success` true,
-- `result_data` an object) with `status, result_data_text, nil, true`: the
-- client then skips its own check. The C pool does; the Lua transports ignore
-- the argument and the client checks their answers itself.
--
-- A bad argument raises as the C pool's `luaL_argerror` does ("bad argument
-- #2 to 'request' (unsupported HTTP method 'BREW')", the number counting as
-- Lua counts it for that call), at the line that called the transport.
-- @module envoke.transport.contract
local contract = {}

local byte, find, lower, format = string.byte, string.find, string.lower, string.format
local type, tostring, tonumber, pairs, pcall = type, tostring, tonumber, pairs, pcall

--- Seconds, seconds, bytes: the defaults of every transport (src/pool.c has the same).
contract.TIMEOUT, contract.CONNECT_TIMEOUT, contract.MAX_BODY = 10, 5, 16 * 1024 * 1024

contract.METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true, HEAD = true }

-- Headers the transport frames the message with; a caller's value would
-- desync it. `Connection: close` alone is allowed (bulk inserts ask for it):
-- the transport then closes the connection after the answer.
local MANAGED = { ["content-length"] = true, ["transfer-encoding"] = true, connection = true }

local function managed(name, value)
  name = lower(name)
  return MANAGED[name] and not (name == "connection" and lower(tostring(value)) == "close")
end

--- Whether the caller's headers ask to close the connection after the answer.
-- @local
function contract.closes(headers)
  if not headers then return false end
  for k, v in pairs(headers) do
    if lower(k) == "connection" and lower(tostring(v)) == "close" then return true end
  end
  return false
end

-- Raises as luaL_argerror would for the transport method `depth` frames up
-- from here (1: the function that called argerror), at that method's caller.
local function argerror(depth, arg, reason)
  local ar = debug.getinfo(depth + 1, "n")
  local name = ar and ar.name or "?"
  if ar and ar.namewhat == "method" then arg = arg - 1 end
  error(format("bad argument #%d to '%s' (%s)", arg, name, reason), depth + 2)
end

-- A string argument as luaL_checklstring reads it (numbers are accepted).
local function checkstring(value, arg)
  local t = type(value)
  if t == "number" then return tostring(value) end
  if t ~= "string" then argerror(3, arg, "string expected, got " .. t) end
  return value
end

local function check_path(path)
  if byte(path, 1) ~= 47 then argerror(3, 3, "path must start with '/'") end
  -- A byte loop, not a pattern: LuaJIT compiles it, and this runs on every call.
  for i = 2, #path do
    local b = byte(path, i)
    if b <= 32 or b >= 127 or b == 35 then
      argerror(3, 3, format("path has a byte that must be percent-encoded (byte %d, code %d)", i, b))
    end
  end
end

local function check_headers(headers)
  if headers == nil then return end
  if type(headers) ~= "table" then argerror(3, 5, "table expected, got " .. type(headers)) end
  for k, v in pairs(headers) do
    if type(k) ~= "string" then argerror(3, 5, "header names must be strings") end
    if type(v) ~= "string" and type(v) ~= "number" then argerror(3, 5, "header values must be strings") end
    if #k == 0 or #k > 256 then argerror(3, 5, "header name must be 1 to 256 characters") end
    if find(k, "[^%w!#$%%&'*+%-.^_`|~]") then
      argerror(3, 5, format("header name '%s' has a character not allowed in a name", k))
    end
    if find(tostring(v), "[\r\n%z]") then argerror(3, 5, format("header '%s' has CR, LF or NUL in its value", k)) end
    if managed(k, v) then argerror(3, 5, format("header '%s' is set by the transport itself", k)) end
  end
end

--- Checks a `request`/`submit` call's arguments, in the C pool's order, and
-- returns the body as text (a table is encoded as JSON). Call it directly
-- from the transport method, so that errors name the caller's line.
-- @tparam string name the module, for errors that are not about one argument
-- @tparam boolean closed whether the transport is closed
-- @tparam function encode the JSON encoder (`envoke.core.json_encode`)
-- @treturn string|nil the body
-- @local
function contract.check_request(name, closed, encode, method, path, body, headers)
  if closed then error(name .. ": attempt to use a closed transport", 3) end
  method = checkstring(method, 2)
  if not contract.METHODS[method] then argerror(2, 2, format("unsupported HTTP method '%s'", method)) end
  check_path(checkstring(path, 3))
  check_headers(headers)
  local t = type(body)
  local json = t == "table" or t == "userdata"
  if not json and t ~= "string" and t ~= "nil" then argerror(2, 4, "body must be a string, a table or nil") end
  if body ~= nil and (method == "GET" or method == "HEAD") then
    argerror(2, 4, format("a %s request has no body", method))
  end
  if json then
    local ok, encoded = pcall(encode, body)
    if not ok then
      error(name .. ": cannot encode the request body as JSON: "
        .. tostring(encoded):gsub("^.-envoke%.core: cannot encode JSON: ", ""), 3)
    end
    body = encoded
  end
  return body
end

--- Splits a base URL: `{ scheme, host, port, authority, prefix }` (the
-- prefix without a trailing '/'); raises on a URL the C pool refuses too,
-- and on a bad port, at the line `depth` frames above (1: the caller).
-- @local
function contract.parse_base_url(name, url, depth)
  local function bad(what) error(format("%s: option 'base_url' %s", name, what), depth + 2) end
  if type(url) ~= "string" then bad("must be a string, got " .. type(url)) end
  local scheme, rest = url:match("^(https?)://(.*)$")
  if not scheme then bad("must start with http:// or https://") end
  local authority, prefix = rest:match("^([^/]*)(.*)$")
  if authority == "" then bad("has no host") end
  if find(authority, "@", 1, true) then bad("must not carry credentials (use api_id and api_key)") end
  if find(url, "[?# \t]") then bad("must not have a query, a fragment or spaces") end
  local host, port = authority:match("^(%[[^%]]+%]):?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then bad("has a bad host or port") end
  local default_port = scheme == "https" and 443 or 80
  port = port ~= "" and tonumber(port) or default_port
  if port < 1 or port > 65535 then bad("has a bad port") end
  return {
    scheme = scheme, host = host, port = port,
    authority = port == default_port and host or (host .. ":" .. port),
    prefix = (prefix:gsub("/+$", "")),
  }
end

local function ms(seconds) return math.floor(seconds * 1000 + 0.5) end

--- The settings every Lua transport reads, checked and with their defaults:
-- `{ url, timeout_ms, connect_ms, max_body, user_agent, auth }` (`auth`: the
-- Authorization value, or nil); `base64` encodes the Basic credential.
-- @local
function contract.settings(name, s, base64)
  -- These go into header lines as they are: CR or LF would smuggle in headers.
  for _, k in ipairs{ "token", "user_agent", "api_id", "api_key" } do
    if type(s[k]) == "string" and find(s[k], "[\r\n%z]") then
      error(format("%s: option '%s' has CR, LF or NUL in it", name, k), 3)
    end
  end
  local max_body = s.max_body or contract.MAX_BODY
  if type(max_body) ~= "number" or max_body < 1 or max_body > 2147483647 or max_body % 1 ~= 0 then
    error(name .. ": option 'max_body' must be an integer from 1 to 2147483647", 3)
  end
  local auth
  if s.token then
    auth = "Bearer " .. s.token
  elseif s.api_id then
    auth = "Basic " .. base64(s.api_id .. ":" .. (s.api_key or ""))
  end
  return {
    url = contract.parse_base_url(name, s.base_url, 3),
    timeout_ms = ms(s.timeout or contract.TIMEOUT),
    connect_ms = ms(s.connect_timeout or contract.CONNECT_TIMEOUT),
    max_body = max_body,
    user_agent = s.user_agent or require("envoke.core").user_agent,
    auth = auth,
  }
end

local BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

--- Standard base64 (with padding), for the Basic credential of the transports
-- that have no encoder of their host's, and for the client's redactor.
-- @tparam string s bytes
-- @treturn string
-- @local
function contract.base64_encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = byte(s, i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = {}
    for j = 1, 4 do
      local k = math.floor(n / 64 ^ (4 - j)) % 64 + 1
      chars[j] = BASE64:sub(k, k)
    end
    if not b then chars[3] = "=" end
    if not c then chars[4] = "=" end
    out[#out + 1] = table.concat(chars)
  end
  return table.concat(out)
end

return contract
