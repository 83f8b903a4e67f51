--- luasocket: socket.http + ltn12 + lua-cjson, used the way its manual shows.
-- socket.http sends "Connection: close" and so opens a new connection for
-- every request; keeping one alive would mean writing HTTP by hand.
--    lua5.4 bench/lua/luasocket.lua BASE_URL COUNT
local measure = require "measure"

local url, count = measure.args()
local http = measure.need("socket.http", "lua-socket")
local ltn12 = measure.need("ltn12", "lua-socket")
local mime = measure.need("mime", "lua-socket")
local cjson = measure.need("cjson", "lua-cjson")

local target = url .. "/v1/contacts/1234"
local authorization = "Basic " .. mime.b64("id:key")

measure.each(count, function()
  local body = cjson.encode{ city = "Toronto" }
  local chunks = {}
  local _, status = http.request{
    url = target, method = "PATCH",
    headers = { authorization = authorization, accept = "application/json",
                ["content-type"] = "application/json", ["content-length"] = #body },
    source = ltn12.source.string(body),
    sink = ltn12.sink.table(chunks),
  }
  if status ~= 200 then return false end
  local data = cjson.decode(table.concat(chunks))
  return data.success == true
end)
