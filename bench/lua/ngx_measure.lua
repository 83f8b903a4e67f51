--- The cosocket cases (ngx-raw, envoke-save-ngx): a loop inside one nginx
-- worker (LuaJIT, cosockets), measured there.
--    lua5.4 bench/lua/ngx_raw.lua BASE_URL COUNT       (or ngx_envoke.lua)
--
-- Driver side (any Lua, from bench/run): starts a private nginx with one
-- worker, which inherits this process's CPU (bench/run pins cases with
-- taskset), asks it over HTTP to run CASE's loop, prints the result line it
-- answers, and stops nginx.
-- nginx side (`serve`): loads CASE (a module whose `setup(url)` returns
-- `batch(n)`, making n requests and returning how many succeeded), warms
-- up as measure.lua does, then times `batch(count)` with the worker's own
-- clocks: wall (CLOCK_MONOTONIC), CPU (os.clock, the worker process's), and
-- the worker's peak RSS.

-- luacheck: globals ngx
local M = {}

-- Untimed requests first, as measure.lua: connection, JIT and allocator settle.
local function warmup_count(count)
  local n = math.floor(count / 10)
  if n < 10 then return 10 end
  if n > 2000 then return 2000 end
  return n
end

local function peak_rss_kb()
  local f = assert(io.open("/proc/self/status", "r"))
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmHWM:%s*(%d+)"))
end

--- nginx side: GET /loop?case=&url=&count= answers the result line.
function M.serve()
  local ffi = require "ffi"
  pcall(ffi.cdef, "struct envoke_bench_ts { long sec; long nsec; };"
    .. " int clock_gettime(int clk, struct envoke_bench_ts *ts);")
  local ts = ffi.new("struct envoke_bench_ts")
  local function now()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.sec) + tonumber(ts.nsec) * 1e-9
  end
  local args = ngx.req.get_uri_args()
  local count = tonumber(args.count)
  local batch = require(args.case).setup(args.url)
  local warm = warmup_count(count)
  local ok = batch(warm)
  if ok ~= warm then return ngx.say(("error: warm-up: %d of %d requests failed"):format(warm - ok, warm)) end
  local wall0, cpu0 = now(), os.clock()
  ok = batch(count)
  local seconds, cpu = now() - wall0, os.clock() - cpu0
  if ok ~= count then return ngx.say(("error: %d of %d requests failed"):format(count - ok, count)) end
  ngx.say(("requests=%d seconds=%.6f cpu_us=%.3f rss_kb=%d"):format(count, seconds, cpu * 1e6 / count,
    peak_rss_kb()))
end

--- Driver side.
function M.main(url, count, case)
  if not url or not tonumber(count) or not case then
    io.stderr:write("usage: ", case or "ngx_raw", ".lua BASE_URL COUNT\n")
    os.exit(2)
  end
  local nginx = require "sandbox.nginx"
  local socket = require "socket"
  local root = nginx.repo_root()
  if not io.open(root .. "/build/luajit/envoke/core.so", "rb") then
    io.stdout:write("skipped: build/luajit/envoke/core.so is missing (make LUA=luajit)\n")
    os.exit(0)
  end
  local srv = nginx.start{
    workers = 1,
    lua_path = root .. "/bench/lua/?.lua",
    lua_cpath = root .. "/build/luajit/?.so",
    http = "  lua_socket_log_errors off;\n",
    server = "location = /loop { content_by_lua_block { require('ngx_measure').serve() } }",
  }
  local conn = socket.tcp()
  conn:settimeout(600)
  local line, err
  if conn:connect("127.0.0.1", srv.port) then
    local esc = function(s) return (s:gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end)) end
    conn:send(("GET /loop?case=%s&url=%s&count=%d HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"):format(esc(case), esc(url),
      tonumber(count)))
    local raw = conn:receive("*a") or ""
    line = raw:match("\r\n\r\n(.-)%s*$")
    err = line == nil and ("no answer from the worker: " .. raw:sub(1, 200)) or nil
  else
    err = "could not reach the worker"
  end
  conn:close()
  local log = srv:error_log()
  srv:stop()
  if line and line:find("^requests=") then
    io.stdout:write(line, "\n")
    return
  end
  io.stderr:write("ngx case ", case, ": ", tostring(err or line), "\n", log:sub(-1500), "\n")
  os.exit(1)
end

return M
