--- luacurl: Debian's lua-curl (`require "curl"`, Lua 5.1) + lua-cjson, one
-- easy handle reused, so libcurl keeps the connection alive. luacurl has no
-- getinfo: the status comes from the status line in the header callback.
--    lua5.1 bench/lua/luacurl.lua BASE_URL COUNT
local measure = require "measure"

local url, count = measure.args()
local curl = measure.need("curl", "lua-curl")
local cjson = measure.need("cjson", "lua-cjson")

local easy = curl.easy_init()
local chunks, status = {}, nil
easy:setopt(curl.OPT_URL, url .. "/v1/contacts/1234")
easy:setopt(curl.OPT_CUSTOMREQUEST, "PATCH")
easy:setopt(curl.OPT_HTTPHEADER, { "Content-Type: application/json", "Accept: application/json" })
easy:setopt(curl.OPT_USERPWD, "id:key")
easy:setopt(curl.OPT_WRITEFUNCTION, function(data, size)
  chunks[#chunks + 1] = data
  return size
end)
easy:setopt(curl.OPT_HEADERFUNCTION, function(line, size)
  status = tonumber(line:match("^HTTP/%S+ (%d+)")) or status
  return size
end)

measure.each(count, function()
  local body = cjson.encode{ city = "Toronto" }
  chunks, status = {}, nil
  easy:setopt(curl.OPT_POSTFIELDS, body)
  if easy:perform() ~= 0 or status ~= 200 then return false end
  local data = cjson.decode(table.concat(chunks))
  return data.success == true
end)
