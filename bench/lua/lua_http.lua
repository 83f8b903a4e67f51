--- lua-http: one HTTP/1.1 connection from http.client, kept alive, a new
-- stream per request (http.request would open a connection every time),
-- + lua-cjson. Runs blocking, outside any cqueues loop.
--    lua5.2 bench/lua/lua_http.lua BASE_URL COUNT
local measure = require "measure"

local url, count = measure.args()
local client = measure.need("http.client", "lua-http")
local new_headers = measure.need("http.headers", "lua-http").new
local cjson = measure.need("cjson", "lua-cjson")

local host, port = url:match("^http://([^:/]+):(%d+)")
local authority = host .. ":" .. port
local conn = assert(client.connect{ host = host, port = tonumber(port), tls = false, version = 1.1 })

measure.each(count, function()
  local body = cjson.encode{ city = "Toronto" }
  local headers = new_headers()
  headers:append(":method", "PATCH")
  headers:append(":scheme", "http")
  headers:append(":authority", authority)
  headers:append(":path", "/v1/contacts/1234")
  headers:append("authorization", "Basic aWQ6a2V5") -- "id:key"
  headers:append("content-type", "application/json")
  headers:append("accept", "application/json")
  headers:append("content-length", tostring(#body))
  local stream = conn:new_stream()
  if not (stream:write_headers(headers, false) and stream:write_chunk(body, true)) then return false end
  local answer = stream:get_headers()
  local raw = answer and stream:get_body_as_string()
  if not raw or answer:get(":status") ~= "200" then return false end
  return cjson.decode(raw).success == true
end)
