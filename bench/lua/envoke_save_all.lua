--- envoke-save_all-N: bulk saves of COUNT contacts at concurrency N.
--    lua5.4|luajit bench/lua/envoke_save_all.lua BASE_URL COUNT N
local measure = require "measure"

local url, count, concurrency = measure.args()
local client = measure.envoke_client(url)

-- Building the contacts is part of what a bulk user pays per request, so it is timed.
measure.run(count, function(n)
  local contacts = {}
  for i = 1, n do
    contacts[i] = client:contact{ id = i }:set("city", "Toronto")
  end
  local _, summary = client:save_all(contacts, { concurrency = concurrency })
  return summary.succeeded
end)
