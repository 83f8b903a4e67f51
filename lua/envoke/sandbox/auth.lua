--- Credentials: HTTP Basic (API ID : API key) and, when configured, a
-- bearer token (Envoke's OAuth 2 tokens, docs/envoke-api.md §1).
-- @module envoke.sandbox.auth

local auth = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local VALUE = {}
for i = 1, #ALPHABET do VALUE[ALPHABET:sub(i, i)] = i - 1 end

--- Decodes standard base64 (padding optional).
-- @treturn string|nil the bytes, or nil when `s` is not base64
function auth.base64_decode(s)
  s = s:gsub("=+$", "")
  if s:find("[^%w%+/]") or #s % 4 == 1 then return nil end
  local out = {}
  for i = 1, #s, 4 do
    local chunk = s:sub(i, i + 3)
    local n, bits = 0, 0
    for j = 1, #chunk do
      n = n * 64 + VALUE[chunk:sub(j, j)]
      bits = bits + 6
    end
    -- Drop the padding bits of a short last chunk.
    local bytes = math.floor(bits / 8)
    n = math.floor(n / 2 ^ (bits - bytes * 8))
    local piece = {}
    for k = bytes, 1, -1 do
      piece[k] = string.char(n % 256)
      n = math.floor(n / 256)
    end
    out[#out + 1] = table.concat(piece)
  end
  return table.concat(out)
end

--- Encodes bytes as standard base64 (with padding): the client's encoder
-- (the server may use the client's shared modules, never the other way round).
auth.base64_encode = require("envoke.transport.contract").base64_encode

--- The Basic Authorization header value for a user and password.
function auth.basic(user, password)
  return "Basic " .. auth.base64_encode(user .. ":" .. password)
end

--- Parses an Authorization header.
-- @treturn table|nil `{scheme = "basic", user = ..., password = ...}` or
--   `{scheme = "bearer", token = ...}`
function auth.parse(header)
  if type(header) ~= "string" then return nil end
  local scheme, rest = header:match("^%s*(%S+)%s+(.-)%s*$")
  if not scheme then return nil end
  scheme = scheme:lower()
  if scheme == "basic" then
    local decoded = auth.base64_decode(rest)
    local user, password = (decoded or ""):match("^([^:]*):(.*)$")
    if not user then return nil end
    return { scheme = "basic", user = user, password = password }
  elseif scheme == "bearer" then
    return { scheme = "bearer", token = rest }
  end
  return nil
end

--- Whether the header carries the configured credentials.
-- @tparam table creds `{api_id = ..., api_key = ..., token = <optional>}`
function auth.allowed(header, creds)
  local a = auth.parse(header)
  if not a then return false end
  if a.scheme == "basic" then return a.user == creds.api_id and a.password == creds.api_key end
  return creds.token ~= nil and creds.token ~= "" and a.token == creds.token
end

--- The header with its secret removed, for the request log.
function auth.redact(header)
  local a = auth.parse(header)
  if not a then return header and "[unparsed, removed]" or nil end
  if a.scheme == "basic" then return "Basic " .. a.user .. ":[removed]" end
  return "Bearer [removed]"
end

return auth
