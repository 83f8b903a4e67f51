-- The HAProxy transport's figures (issue 12): run on its own, from the checkout,
--
--   ./run lua5.4 bench/haproxy.lua            (BENCH_RUNS=5, BENCH_N=2000)
--
-- It starts the sandbox and an HAProxy (one thread) with the HAProxy specs'
-- rig, and measures inside HAProxy, against the sandbox's GET /v1/settings:
--   raw        a plain core.tcp keep-alive loop (the reference of each run)
--   transport  envoke.transport.haproxy's request, one kept-alive connection
--   fresh      the same with a new connection for every request (pool_size = 0)
--   ping       client:ping(), the whole client over the transport
--   async      client:ping_async() x 200, then poll until done (HAProxy tasks,
--              all in flight at once, each on a connection of its own)
-- and from outside, one HAProxy service call per ping (the client made once
-- in the lua-load'ed file): `calls` with the idle connection reused across
-- service calls, `calls-fresh` with one connection per call. Last, while a
-- ping waits 1 s on the sandbox, the slowest answer of another frontend:
-- through core.tcp, and through libcurl (transport = "curl").
-- Medians of BENCH_RUNS runs; ratios against `raw` of the same run. Timings
-- move from run to run on these VMs: only the ratios compare.
package.path = "./spec/support/?.lua;" .. package.path
local socket = require "socket"
local haproxy_rig = require "haproxy_rig"

local RUNS = tonumber(os.getenv("BENCH_RUNS") or "5")
local N = tonumber(os.getenv("BENCH_N") or "2000")

local INSIDE = [[
  local n, case = args.n, args.case
  local headers = "GET /v1/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic "
    .. require("envoke.sandbox.auth").base64_encode(cfg.sandbox.api_id .. ":" .. cfg.sandbox.api_key)
    .. "\r\nAccept: application/json\r\n\r\n"
  local t0 = now()
  if case == "raw" then
    local s = core.tcp()
    s:settimeout(10)
    assert(s:connect("127.0.0.1", math.tointeger(cfg.sandbox.port)))
    for _ = 1, n do
      s:send(headers)
      local len
      local line = assert(s:receive("*l"))
      repeat
        line = assert(s:receive("*l"))
        len = len or tonumber(line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)"))
      until line == ""
      assert(s:receive(len))
    end
    s:close()
  elseif case == "transport" or case == "fresh" then
    local t = transport{ base_url = cfg.sandbox.url, api_id = cfg.sandbox.api_id, api_key = cfg.sandbox.api_key,
                         pool_size = case == "fresh" and 0 or nil }
    for _ = 1, n do assert(t:request("GET", "/v1/settings") == 200) end
  elseif case == "ping" then
    local c = client()
    for _ = 1, n do assert(c:ping()) end
  elseif case == "async" then
    local c = client()
    for _ = 1, n do c:ping_async(function(ok, err) assert(ok, err) end) end
    while c:pending() > 0 do c:poll(100) end
  end
  return (now() - t0) * 1000 / n -- microseconds per request
]]

local function median(list)
  table.sort(list)
  return list[math.ceil(#list / 2)]
end

-- Microseconds per call, from outside: one service call (one ping) each.
local function service_calls(rig, n, fresh)
  local code = fresh and "return (_G.fresh_client:ping()) ~= nil" or "return (at_load.client:ping()) ~= nil"
  local t0 = socket.gettime()
  for _ = 1, n do assert(rig:run(code)) end
  return (socket.gettime() - t0) * 1e6 / n
end

-- The slowest answer (ms) of the other frontend while a ping waits 1 s on the sandbox.
local function other_while_waiting(rig, transport)
  rig.sandbox:fault{ path = "/v1/settings", kind = "delay", delay_ms = 1000, count = 1 }
  local pending = rig:send("return (client{ transport = args.transport, retries = 0 }:ping()) ~= nil",
    { transport = transport })
  local worst, t_end = 0, socket.gettime() + 0.9
  socket.sleep(0.05)
  while socket.gettime() < t_end do
    local t0 = socket.gettime()
    assert(rig:get_other() == 200)
    worst = math.max(worst, socket.gettime() - t0)
    socket.sleep(0.01)
  end
  assert(pending:wait())
  return worst * 1000
end

local rig = haproxy_rig.start{ global = "  tune.bufsize 262144" }
local ok, problem = pcall(function()
  -- A client made at load time with no pool: one connection per service call.
  rig:run([[ _G.fresh_client = envoke.new{ base_url = cfg.sandbox.url, api_id = cfg.sandbox.api_id,
    api_key = cfg.sandbox.api_key, transport = require("envoke.transport.haproxy").new{ base_url = cfg.sandbox.url,
    api_id = cfg.sandbox.api_id, api_key = cfg.sandbox.api_key, pool_size = 0 } } ]])
  local cases = { "raw", "transport", "fresh", "ping", "async" }
  local results = {}
  for _, c in ipairs(cases) do results[c] = {} end
  results.calls, results["calls-fresh"] = {}, {}
  for _ = 1, RUNS do
    for _, c in ipairs(cases) do
      rig.sandbox:reset() -- the sandbox's request log grows: each case starts from an empty one
      -- async: every call in flight at once, each on its own connection: fewer of them
      table.insert(results[c], rig:run(INSIDE, { n = c == "async" and math.min(N, 200) or N, case = c }))
    end
    rig.sandbox:reset()
    table.insert(results.calls, service_calls(rig, math.floor(N / 4), false))
    table.insert(results["calls-fresh"], service_calls(rig, math.floor(N / 4), true))
  end
  local raw = median(results.raw)
  print(("HAProxy %s, nbthread 1, %d runs of %d requests (service calls: %d), medians"):format(
    rig:run("return core.get_info().Version"), RUNS, N, math.floor(N / 4)))
  print(("%-12s %10s %8s"):format("case", "µs/request", "× raw"))
  for _, c in ipairs{ "raw", "transport", "fresh", "ping", "async", "calls", "calls-fresh" } do
    local m = median(results[c])
    print(("%-12s %10.1f %8.2f"):format(c, m, m / raw))
  end
  print(("other frontend, slowest answer while a ping waits 1 s: core.tcp %.1f ms, libcurl %.1f ms"):format(
    other_while_waiting(rig, nil), other_while_waiting(rig, "curl")))
end)
rig:stop()
if not ok then error(problem, 0) end
