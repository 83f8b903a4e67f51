--- The streaming bulk case: COUNT generated contacts saved through save_all
-- from an iterator with results = false, at concurrency N, against the fixed
-- answer. Prints the RSS at 10k, 100k and 1M items (where reached) and the peak:
--    stream count=N seconds=S rss_10k_kb=K rss_100k_kb=K rss_1m_kb=K rss_end_kb=K hwm_kb=K
--    lua5.4 bench/lua/stream.lua BASE_URL COUNT [N]
local measure = require "measure"
local gettime = require("socket.core").gettime

local url, count, concurrency = measure.args()
local client = measure.envoke_client(url)

local marks, rss = { [10000] = "rss_10k_kb", [100000] = "rss_100k_kb", [1000000] = "rss_1m_kb" }, {}
local i = 0
local function next_item()
  if i >= count then return nil end
  i = i + 1
  return { id = i, city = "Toronto" }
end
local t0 = gettime()
local _, summary = client:save_all(next_item, {
  concurrency = concurrency or 16, results = false,
  on_progress = function(done)
    if marks[done] then rss[marks[done]] = measure.status_kb("VmRSS") end
  end,
})
local seconds = gettime() - t0
if summary.succeeded ~= count then
  io.stderr:write(("%d of %d saves failed\n"):format(count - summary.succeeded, count))
  os.exit(1)
end
local out = { ("stream count=%d seconds=%.3f"):format(count, seconds) }
for _, k in ipairs{ "rss_10k_kb", "rss_100k_kb", "rss_1m_kb" } do
  if rss[k] then out[#out + 1] = ("%s=%d"):format(k, rss[k]) end
end
out[#out + 1] = ("rss_end_kb=%d hwm_kb=%d"):format(measure.status_kb("VmRSS"), measure.status_kb("VmHWM"))
io.stdout:write(table.concat(out, " "), "\n")
