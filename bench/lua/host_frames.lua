--- host-c-*, host-love-*: the host game of spec/hosts (a C program embedding
-- Lua 5.4 in a fixed 60 Hz loop, or LÖVE headless on LuaJIT) against a
-- sandbox of its own over HTTP or HTTPS: COUNT writes, 10 new ones a frame,
-- and the CPU each frame's client:poll(0) takes (os.clock deltas in the host).
-- Over HTTPS the client's ca_file holds the system CA store plus the sandbox's
-- CA, so loading it costs what loading the real store costs; the first
-- connection is part of the run (it is made in one of the first polls).
--    lua5.4 bench/lua/host_frames.lua c|love http|https COUNT
-- Prints the result line bench/run reads, plus:
--   worst_us  the longest poll(0) of the run (CPU)     p99_us  its 99th percentile
--   connect_us  the longest poll(0) before the first answer (the first connection's setup)
--   client_us envoke.new (where a CA store loaded at creation is paid)
-- seconds is the host's wall time, start to exit; cpu_us the poll(0) CPU per write.
-- The C host then runs again under callgrind (CALLGRIND_WRITES writes, fixed):
--   ir_poll   instructions in envoke.core's perform (poll) per write
--   ir_new    instructions in making the pool (envoke.new's C part)
--   ir_ca     instructions in OpenSSL's CA-file loading, wherever it ran
local measure = require "measure"
measure.use_checkout()
local harness = dofile("spec/hosts/harness.lua")
local shell = harness.shell

local host, scheme, count = arg[1], arg[2], math.floor(tonumber(arg[3]) or 0)
if not (host == "c" or host == "love") or not (scheme == "http" or scheme == "https") or count < 1 then
  io.stderr:write("usage: host_frames.lua c|love http|https COUNT\n")
  os.exit(2)
end
if host == "love" and not harness.installed("love") then measure.skip("love is not installed (make deps)") end

local SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"
local CALLGRIND_WRITES = 100
local dir = harness.tmpdir("envoke-bench-host")
local srv

local function finish(code, message)
  if message then io.stderr:write(message, "\n") end
  if srv then srv.stop() end
  harness.cleanup(dir)
  os.exit(code)
end

local c_host = "build/bench/host-c"
if host == "c" then
  local built, problem = harness.build_c_host(c_host)
  if not built then finish(1, "cc failed: " .. tostring(problem)) end
end

srv = require("sandbox.host").start{ tls_port = true }
-- bench/run pins this case to CPU 0; the server belongs on the other one.
shell.run(("for p in %d $(ps -o pid= --ppid %d); do taskset -a -p -c 1 $p; done >/dev/null 2>&1"):format(
  srv.nginx.pid, srv.nginx.pid))

local tls = scheme == "https"
local env = harness.env(srv, tls, dir .. "/run", host .. "-" .. scheme, harness.private_home(dir))
env.HOST_CALLS, env.HOST_PER_FRAME, env.HOST_QUIT_CALLS, env.HOST_DRAIN_MS = count, 10, 10, 5000
if tls then
  local system = shell.read_file(SYSTEM_CA) or finish(1, SYSTEM_CA .. " is missing (ca-certificates)")
  local bundle = dir .. "/ca-bundle.pem"
  shell.write_file(bundle, system .. "\n" .. assert(shell.read_file(srv.ca_file)))
  env.HOST_CA_FILE = bundle
end

-- Inclusive instruction counts per function name (the largest entry of each)
-- from callgrind's output.
local function instructions(out_file)
  local text = shell.run("callgrind_annotate --inclusive=yes --threshold=100 " .. shell.quote(out_file))
  local ir = {}
  for figure, fn in text:gmatch("\n%s*([%d,]+) %([^)]*%)%s+[^\n]-:([%w_]+)[^\n]*") do
    local n = tonumber((figure:gsub(",", "")))
    if not ir[fn] or n > ir[fn] then ir[fn] = n end
  end
  return ir
end

-- The C host under callgrind: where the instructions go, first connection included.
local function callgrind_figures()
  if host ~= "c" or not harness.installed("valgrind") then return "" end
  local cg_env = {}
  for k, v in pairs(env) do cg_env[k] = v end
  cg_env.HOST_OUT, cg_env.HOST_NAME, cg_env.HOST_CALLS = dir .. "/cg", env.HOST_NAME .. "-cg", CALLGRIND_WRITES
  local out_file = dir .. "/callgrind.out"
  local cmd = "valgrind --tool=callgrind --callgrind-out-file=" .. shell.quote(out_file) .. " "
    .. harness.command(host, c_host)
  local cg_code, cg_log = harness.run_host(cmd, cg_env, dir .. "/cg.log", 300)
  if cg_code ~= 0 then finish(1, "the host under callgrind exited " .. cg_code .. ": " .. cg_log) end
  local ir = instructions(out_file)
  return (" ir_poll=%.0f ir_new=%d ir_ca=%d"):format((ir.l_perform or 0) / CALLGRIND_WRITES, ir.l_pool_new or 0,
    ir.X509_STORE_load_file_ex or ir.X509_STORE_load_file or 0)
end

local gettime = require("socket.core").gettime
local t0 = gettime()
local code, log = harness.run_host(harness.command(host, c_host), env, dir .. "/run.log", 300)
local seconds = gettime() - t0
if code ~= 0 then finish(1, ("the host exited %d: %s"):format(code, log)) end

local results = harness.results(dir .. "/run")
if not (results and results.done) then finish(1, "the host wrote no results: " .. log) end
for i = 1, count do
  local c = results.calls[i]
  if not (c and c.ok) then finish(1, ("write %d failed: %s"):format(i, c and tostring(c.kind) or "no answer")) end
end

-- Every frame's poll(0) CPU; those up to the first answer set up the first connection.
local polls, total, connect, answered = {}, 0, 0, false
for line in (shell.read_file(dir .. "/run.frames") or ""):gmatch("[^\n]+") do
  local poll_us, finished = line:match("^%d+ %S+ (%S+) %S+ (%d+)")
  poll_us = tonumber(poll_us)
  polls[#polls + 1] = poll_us
  total = total + poll_us
  if not answered and poll_us > connect then connect = poll_us end
  answered = answered or tonumber(finished) > 0
end
table.sort(polls)
local worst = polls[#polls]
local p99 = polls[math.max(1, math.ceil(#polls * 0.99))]

local line = ("requests=%d seconds=%.6f cpu_us=%.3f rss_kb=%d worst_us=%.1f p99_us=%.1f connect_us=%.1f"
  .. " client_us=%.1f frames=%d"):format(count, seconds, total / count, tonumber(results.facts.rss_kb) or 0,
  worst, p99, connect, tonumber(results.facts.client_cpu_us) or 0, #polls)
io.stdout:write(line, callgrind_figures(), "\n")
finish(0)
