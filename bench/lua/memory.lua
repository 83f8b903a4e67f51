--- The memory check: COUNT sequential saves in one process, RSS sampled
-- after the first FIRST and after all of them. Prints
--    first=N count=N rss_first_kb=K rss_end_kb=K diff_kb=K lua_first_kb=K lua_end_kb=K
--    lua5.4 bench/lua/memory.lua BASE_URL COUNT FIRST
local measure = require "measure"

local url, count, first = measure.args()
first = math.min(math.floor(first or 10000), count)
local client = measure.envoke_client(url)

local rss_first, lua_first
for i = 1, count do
  assert(client:contact{ id = 1234 }:set("city", "Toronto"):save())
  if i == first then
    rss_first, lua_first = measure.status_kb("VmRSS"), collectgarbage("count")
  end
end
local rss_end, lua_end = measure.status_kb("VmRSS"), collectgarbage("count")
io.stdout:write(("first=%d count=%d rss_first_kb=%d rss_end_kb=%d diff_kb=%d lua_first_kb=%.0f lua_end_kb=%.0f\n")
  :format(first, count, rss_first, rss_end, rss_end - rss_first, lua_first, lua_end))
