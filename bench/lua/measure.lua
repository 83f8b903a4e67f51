--- What every Lua case shares: its arguments, the clocks, RSS and the one
-- result line bench/run reads:
--    requests=N seconds=S cpu_us=U rss_kb=K warmup=W
-- cpu_us is the process's user+sys CPU (os.clock) over the timed part only,
-- per request; rss_kb is the peak (VmHWM); warmup is how many untimed requests
-- came first (BENCH_WARMUP fixes it). Runs on Lua 5.1-5.4 and LuaJIT.
local measure = {}

-- Wall clock with microseconds: luasocket's C core is packaged for every Lua
-- here (make deps installs it) and loading it alone costs next to nothing.
local gettime = require("socket.core").gettime

--- The case's arguments: base URL, request count, then any extra numbers.
function measure.args()
  local url, count = arg[1], tonumber(arg[2])
  if not url or not count or count < 1 then
    io.stderr:write("usage: ", arg[0], " BASE_URL COUNT [N]\n")
    os.exit(2)
  end
  return url, math.floor(count), tonumber(arg[3])
end

--- A field of /proc/self/status in KiB (`VmRSS` by default, `VmHWM` for the peak).
function measure.status_kb(field)
  local f = assert(io.open("/proc/self/status", "r"))
  local text = f:read("*a")
  f:close()
  return tonumber(text:match((field or "VmRSS") .. ":%s*(%d+)"))
end

-- Untimed requests first: the connection, caches, the JIT and the allocator settle.
-- BENCH_WARMUP fixes their number: bench/run's callgrind pass counts them.
local function warmup_count(count)
  local fixed = os.getenv("BENCH_WARMUP")
  if fixed and fixed ~= "" then
    local n = fixed:match("^%d+$") and tonumber(fixed)
    if not n then
      io.stderr:write("BENCH_WARMUP must be a count >= 0\n")
      os.exit(2)
    end
    return n
  end
  local n = math.floor(count / 10)
  if n < 10 then return 10 end
  if n > 2000 then return 2000 end
  return n
end

--- Times `batch(n)` (which makes n requests and returns how many succeeded)
-- after a warm-up, prints the result line; exits non-zero if any failed.
function measure.run(count, batch)
  local warm = warmup_count(count)
  local ok = batch(warm)
  if ok ~= warm then
    io.stderr:write(("warm-up: %d of %d requests failed\n"):format(warm - ok, warm))
    os.exit(1)
  end
  local wall0, cpu0 = gettime(), os.clock()
  ok = batch(count)
  local seconds, cpu = gettime() - wall0, os.clock() - cpu0
  if ok ~= count then
    io.stderr:write(("%d of %d requests failed\n"):format(count - ok, count))
    os.exit(1)
  end
  io.stdout:write(("requests=%d seconds=%.6f cpu_us=%.3f rss_kb=%d warmup=%d\n"):format(
    count, seconds, cpu * 1e6 / count, measure.status_kb("VmHWM"), warm))
end

--- As run, for a case that makes one request per call of `request()` (true when it succeeded).
function measure.each(count, request)
  measure.run(count, function(n)
    local ok = 0
    for _ = 1, n do
      if request() then ok = ok + 1 end
    end
    return ok
  end)
end

--- Says why a case cannot run, in the form bench/run reports, and ends it.
function measure.skip(why)
  io.stdout:write("skipped: ", why, "\n")
  os.exit(0)
end

--- Loads a module, or skips the case naming what is missing.
function measure.need(module, package)
  local ok, m = pcall(require, module)
  if not ok then measure.skip(("module '%s' not found (Debian package %s)"):format(module, package)) end
  return m
end

--- Puts this checkout first on the module paths: its Lua modules and the core
-- bench/run built for this interpreter (build/5.4, build/luajit, ...), never
-- an installed or stale copy.
function measure.use_checkout()
  local version = rawget(_G, "jit") and "luajit" or _VERSION:match("%d+%.%d+")
  package.cpath = "./build/" .. version .. "/?.so;" .. package.cpath
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
end

--- lua-envoke from this checkout, as a client of the benchmark's server.
function measure.envoke_client(url)
  measure.use_checkout()
  local envoke = require "envoke"
  return envoke.new{ base_url = url, api_id = "id", api_key = "key", retries = 0 }
end

return measure
