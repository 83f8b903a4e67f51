--- lua-floor-N: the least any Lua loop over envoke.core's pool pays per bulk
-- save, counted as envoke-save_all-N counts it (the contacts built and timed,
-- N requests in flight): plan, submit, collect, the envelope checked in C,
-- absorb, one result record. No retries, rate limit, journal, hooks, refusals
-- or summary: not a way to save, but the floor under save_all's engine, so the
-- table shows how much of save_all's ratio any engine could still win.
--    lua5.4|luajit bench/lua/floor_save_all.lua BASE_URL COUNT N
local measure = require "measure"

local url, count, concurrency = measure.args()
local client = measure.envoke_client(url)
local Contact = require "envoke.contact"
local pool = client.transport

measure.run(count, function(n)
  local contacts, results, inflight = {}, {}, {}
  for i = 1, n do
    contacts[i] = client:contact{ id = i }:set("city", "Toronto")
  end
  local sent, done = 0, 0
  local function send()
    sent = sent + 1
    local plan = Contact.plan(contacts[sent], "save")
    inflight[pool:submit(plan.method, plan.path, plan.body, plan.headers, true)] = plan
  end
  while sent < n and sent < concurrency do send() end
  while done < n do
    pool:perform(1000)
    local id, _, raw, _, checked = pool:finished()
    while id do
      local plan = inflight[id]
      inflight[id] = nil
      done = done + 1
      if checked then
        results[#results + 1] = { ok = true, contact = plan.finish(plan, raw), applied = true, attempts = 1 }
      end
      if sent < n then send() end
      id, _, raw, _, checked = pool:finished()
    end
  end
  return #results
end)
