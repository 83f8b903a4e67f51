--- What lua-envoke's Lua code costs per save, stage by stage, with an
-- in-memory transport that answers the benchmark's envelope at once: no
-- server, no libcurl, no kernel. Not a case of bench/cases: a tool for
-- working on the library (make a change, rerun, compare).
--    LUA_PATH="./bench/lua/?.lua;;" lua5.4 bench/lua/lua_side.lua [N]
--    LUA_PATH="./bench/lua/?.lua;;" luajit bench/lua/lua_side.lua [N]
-- Caches stay hot here; in a real loop every trip through the kernel's
-- network stack evicts them, and the same code costs about twice as much.
local measure = require "measure"
measure.use_checkout()
local envoke = require "envoke"
local core = require "envoke.core"
local ENVELOPE = require "envelope"

local N = math.floor(tonumber(arg and arg[1]) or 200000)
local HEADERS = { server = "nginx/1.22.1", date = "Mon, 23 Nov 2026 00:00:00 GMT",
                  ["content-type"] = "application/json", ["content-length"] = tostring(#ENVELOPE),
                  connection = "keep-alive" }

-- Blocking and non-blocking halves of a transport, answering from memory.
local queue, head, tail, last_id = {}, 1, 0, 0
local transport = {
  request = function() return 200, ENVELOPE, HEADERS end,
  submit = function()
    last_id, tail = last_id + 1, tail + 1
    queue[tail] = last_id
    return last_id
  end,
  perform = function() return tail - head + 1 end,
  finished = function()
    if head > tail then return nil end
    local id = queue[head]
    queue[head], head = nil, head + 1
    return id, 200, ENVELOPE, HEADERS
  end,
  pending = function() return tail - head + 1 end,
  cancel = function() return false end,
}
local client = envoke.new{ base_url = "http://127.0.0.1", api_id = "id", api_key = "key", retries = 0,
                           transport = transport }
local Contact = require "envoke.contact"

local function per_call_us(n, fn)
  fn(math.min(n, 1000)) -- warm-up (and the JIT)
  local t0 = os.clock()
  fn(n)
  return (os.clock() - t0) / n * 1e6
end

local function row(name, us)
  io.stdout:write(("%-56s %7.2f us\n"):format(name, us))
end

io.stdout:write(("%s, %d calls each\n"):format(rawget(_G, "jit") and jit.version or _VERSION, N))
row("client:contact{ id = 1234 }", per_call_us(N, function(n)
  for _ = 1, n do client:contact{ id = 1234 } end
end))
row("  + :set(\"city\", \"Toronto\")", per_call_us(N, function(n)
  for _ = 1, n do client:contact{ id = 1234 }:set("city", "Toronto") end
end))
row("  + the save plan (Contact.plan)", per_call_us(N, function(n)
  for _ = 1, n do Contact.plan(client:contact{ id = 1234 }:set("city", "Toronto"), "save") end
end))
row("  + :save() (execute, envelope check, absorb)", per_call_us(N, function(n)
  for _ = 1, n do assert(client:contact{ id = 1234 }:set("city", "Toronto"):save()) end
end))
row("core.json_members(envelope, \"success\", \"result_data\")", per_call_us(N, function(n)
  local members = core.json_members
  for _ = 1, n do members(ENVELOPE, "success", "result_data") end
end))
row("core.json_envelope(envelope) (the client's check of a write)", per_call_us(N, function(n)
  local envelope = core.json_envelope
  for _ = 1, n do envelope(ENVELOPE) end
end))
row("core.json_encode{ city = \"Toronto\" }", per_call_us(N, function(n)
  local encode = core.json_encode
  for _ = 1, n do encode{ city = "Toronto" } end
end))

-- Bulk: building the contacts, then save_all's engine over them (each list
-- is saved once: a saved contact has nothing left to send).
local function contacts(n)
  local list = {}
  for i = 1, n do list[i] = client:contact{ id = i }:set("city", "Toronto") end
  return list
end
-- The floor under save_all's engine: what any loop over these contacts must
-- do per item (plan, submit, collect, check the envelope, absorb, one result
-- record), without the engine's and the run's bookkeeping: no retries, rate
-- limit, journal, hooks or accounting of what may have been applied.
local function floor_loop(list)
  local inflight, results = {}, {}
  for i, c in ipairs(list) do
    local plan = Contact.plan(c, "save")
    inflight[transport.submit(plan.method, plan.path, plan.body, plan.headers, true)] = plan
    local id, status, raw, headers = transport.finished()
    local p = inflight[id]
    inflight[id] = nil
    local data = assert(client:outcome(status, raw, headers, p.envelope, p.expect))
    results[i] = { ok = true, contact = p.finish(p, data), applied = true, attempts = 1 }
  end
  return results
end

local bulk_n = math.max(1000, math.floor(N / 2))
floor_loop(contacts(1000)) -- warm-up
do
  local list = contacts(bulk_n)
  local t0 = os.clock()
  floor_loop(list)
  row("save_all's floor (see floor_loop), per contact", (os.clock() - t0) / bulk_n * 1e6)
end
for _, concurrency in ipairs{ 8, 16 } do
  client:save_all(contacts(1000), { concurrency = concurrency }) -- warm-up
  local t0 = os.clock()
  local list = contacts(bulk_n)
  local t1 = os.clock()
  local _, summary = client:save_all(list, { concurrency = concurrency })
  local t2 = os.clock()
  assert(summary.succeeded == bulk_n)
  row(("save_all, concurrency %d: building each contact"):format(concurrency), (t1 - t0) / bulk_n * 1e6)
  row(("save_all, concurrency %d: the engine, per contact"):format(concurrency), (t2 - t1) / bulk_n * 1e6)
end
