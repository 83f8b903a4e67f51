-- What the calls beyond contacts cost, as ratios against a reference in the
-- same run (not part of `make bench`; run: ./run bench/beyond.lua [N]):
--
--   new-client     envoke.new with its namespaces (client.tags, ...) against
--                  envoke.new with attach() made a no-op
--   sandbox-hooks  contact inserts into the in-process sandbox with a
--                  new_contact and an api_submission hook (deliveries to a
--                  function) against the same inserts with no hook
--   bulk-2500      tags:add_contacts of 2,500 ids (3 requests, merged)
--                  against the same 3 requests sent with client:request
--
-- Each pair runs interleaved, 5 rounds; medians. Timings move from run to run
-- on these VMs: read the ratios.
--
-- Measured here (2 vCPU VM, Lua 5.4): new-client 1.20, sandbox-hooks 2.18
-- (3.55 before the sandbox looked only at waiting deliveries), bulk-2500 1.33.
-- callgrind, 1,000 clients on a plain-table transport: 97.9k instructions per
-- envoke.new with the namespaces, 76.3k without (attach: ~21.6k, once per client).
local envoke = require "envoke"
local Sandbox = require "envoke.sandbox"
local resources = require "envoke.resources"
local core = require "envoke.core"

local N = tonumber(arg and arg[1]) or 20000
local ROUNDS = 5

local function median(t)
  table.sort(t)
  return t[math.ceil(#t / 2)]
end

local function timed(fn)
  collectgarbage()
  local t0 = os.clock()
  fn()
  return os.clock() - t0
end

local function pair(name, case, reference)
  local a, b = {}, {}
  for _ = 1, ROUNDS do
    a[#a + 1] = timed(case)
    b[#b + 1] = timed(reference)
  end
  local ma, mb = median(a), median(b)
  print(("| %s | %.1f ms | %.1f ms | %.2f |"):format(name, ma * 1000, mb * 1000, ma / mb))
end

print("| case | time | reference | × ref |")
print("| --- | ---: | ---: | ---: |")

local stub = {} -- a transport object: envoke.new only keeps it
local attach = resources.attach
pair("new-client x" .. N, function()
  resources.attach = attach
  for _ = 1, N do envoke.new{ transport = stub } end
end, function()
  resources.attach = function() end
  for _ = 1, N do envoke.new{ transport = stub } end
end)
resources.attach = attach

local inserts = math.max(100, math.floor(N / 10))
local function insert_all(with_hooks)
  local sb = Sandbox.new{ deliver = function() return 200 end }
  local c = envoke.new{ transport = "in_process", sandbox = { server = sb } }
  if with_hooks then
    assert(c.hooks:create{ type = "new_contact", url = "http://127.0.0.1:9/a" })
    assert(c.hooks:create{ type = "api_submission", url = "http://127.0.0.1:9/b" })
  end
  for i = 1, inserts do assert(c:contact{ email = ("u%d@example.com"):format(i) }:insert()) end
end
pair("sandbox-hooks x" .. inserts, function() insert_all(true) end, function() insert_all(false) end)

local sb = Sandbox.new()
local c = envoke.new{ transport = "in_process", sandbox = { server = sb } }
local tag = assert(c.tags:create{ name = "Bench" })
local ids = {}
for i = 1, 2500 do ids[i] = i end
local chunks = {}
for first = 1, #ids, 1000 do
  local chunk = {}
  for i = first, math.min(first + 999, #ids) do chunk[#chunk + 1] = ids[i] end
  chunks[#chunks + 1] = core.json_encode{ contact_ids = chunk }
end
pair("bulk-2500", function()
  for _ = 1, 20 do assert(c.tags:add_contacts(tag.id, { ids = ids })) end
end, function()
  for _ = 1, 20 do
    for _, body in ipairs(chunks) do assert(c:request("POST", "/v2/tags/" .. tag.id .. "/contacts", body)) end
  end
end)
