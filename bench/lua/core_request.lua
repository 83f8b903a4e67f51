--- core-request: envoke.core's blocking pool:request alone (no contact
-- objects, no decoding), the figure to set beside the C easy loop.
--    lua5.4 bench/lua/core_request.lua BASE_URL COUNT
local measure = require "measure"
measure.use_checkout()
local core = require "envoke.core"

local url, count = measure.args()
local pool = core.pool{ base_url = url, username = "id", password = "key" }
local body = { city = "Toronto" }

measure.each(count, function()
  return pool:request("PATCH", "/v1/contacts/1234", body) == 200
end)
