-- sandbox.nginx: a private nginx with the Lua module on 127.0.0.1, for the
-- specs and the sandbox. Each server gets its own temp prefix (config, logs,
-- temp dirs, TLS files), so several can run side by side and nothing is
-- assumed about /etc/nginx or /var/lib/nginx.
--
--   local nginx = require "sandbox.nginx"
--   local srv = nginx.start{
--     port = nil|number,          -- nil: a free port picked at random
--     tls_port = nil|true|number, -- true: pick one; HTTPS + HTTP/2 on it
--     tls_names = {"127.0.0.1", "localhost"}, -- names the server cert holds
--     http = "...",               -- text inside http{}
--     server = "...",             -- text inside each server{}
--     lua_path = "a;b", lua_cpath = "a;b", -- prepended to the defaults
--     workers = 1,
--     foreground = false,         -- true: daemon off; start() returns when nginx exits
--     on_ready = function(srv) end, -- foreground only: called once nginx listens
--   }
--   srv.url, srv.tls_url, srv.ca_file, srv.port, srv.tls_port, srv.prefix, srv.pid
--   srv:stop()       idempotent; waits for nginx to exit, removes the prefix
--   srv:error_log()  the error log's text
--   srv.exit_code    foreground only: nginx's exit status once start() returns
--   srv.interrupted  foreground only: true when Ctrl-C ended it
--
-- A daemon server also stops when srv is garbage-collected or when the Lua
-- process that started it exits (a small shell watchdog sees to the latter),
-- so a crashed spec run leaves no nginx behind.
--
-- Only os.execute and io.popen are used, so it runs under Lua 5.1-5.4 and
-- LuaJIT without luasocket.

local M = {}

local NGINX = "nginx"
local MODULES = "/usr/lib/nginx/modules"
local START_ATTEMPTS = 8      -- new random ports after "Address already in use"
local STOP_WAIT_S = 10        -- how long stop() waits before SIGKILL

-- Shell function: is this pid a live process? A zombie counts as gone, since
-- here nginx daemons are reparented to an init that reaps them only slowly.
local ALIVE_FN = "alive() { s=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null) || return 1;"
  .. " case \"$s\" in Z*|X*|'') return 1;; esac; }\n"

local shell = require "sandbox.shell"
local shell_quote, run, read_file, write_file = shell.quote, shell.run, shell.read_file, shell.write_file

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- The repository root, as an absolute path: the directory above sandbox/.
local function repo_root()
  local source = debug.getinfo(1, "S").source
  local dir = source:sub(1, 1) == "@" and source:sub(2):match("^(.*)/sandbox/[^/]*$")
  if not dir or dir == "" then dir = "." end
  if dir:sub(1, 1) ~= "/" then
    local cwd = trim((run("pwd")))
    dir = dir == "." and cwd or cwd .. "/" .. dir:gsub("^%./", "")
  end
  return dir
end

local function is_root()
  return trim((run("id -u"))) == "0"
end

-- Ports bound by any local TCP socket, from /proc (no luasocket needed).
local function ports_in_use()
  local used = {}
  for _, file in ipairs{ "/proc/net/tcp", "/proc/net/tcp6" } do
    local text = read_file(file) or ""
    for hex in text:gmatch("\n%s*%d+:%s+%x+:(%x+)") do
      used[tonumber(hex, 16)] = true
    end
  end
  return used
end

local function urandom_u16()
  local f = io.open("/dev/urandom", "rb")
  if not f then return math.random(0, 65535) end
  local b = f:read(2)
  f:close()
  return b:byte(1) * 256 + b:byte(2)
end

-- Random ports below the kernel's ephemeral range, so they never collide with
-- the client side of loopback connections.
local function pick_port(avoid)
  local low = 20000
  local range = read_file("/proc/sys/net/ipv4/ip_local_port_range")
  local ephemeral_low = range and tonumber(range:match("^%s*(%d+)"))
  local high = (ephemeral_low and ephemeral_low > low + 1000) and ephemeral_low - 1 or 29999
  local used = ports_in_use()
  for _ = 1, 200 do
    local port = low + urandom_u16() % (high - low + 1)
    if not used[port] and not avoid[port] then return port end
  end
  error("sandbox.nginx: no free port found in " .. low .. "-" .. high)
end

-- A quoted nginx config string (paths may hold spaces).
local function q(s)
  return '"' .. s:gsub('[\\"]', "\\%0") .. '"'
end

-- A throwaway CA and a server certificate it signs, made with the openssl CLI.
-- EC keys keep this to a few milliseconds.
local function make_tls_files(prefix, names)
  local san = {}
  for i, name in ipairs(names) do
    san[i] = (name:match("^[%d.]+$") or name:find(":", 1, true)) and "IP:" .. name or "DNS:" .. name
  end
  write_file(prefix .. "/tls/server.ext", table.concat({
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=" .. table.concat(san, ","),
  }, "\n") .. "\n")
  local d = shell_quote(prefix .. "/tls")
  local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  local out, code = run("{ " .. table.concat({
    "set -e; cd " .. d,
    "openssl req -x509 " .. ec .. " -keyout ca.key -out ca.pem -days 3"
      .. " -subj '/CN=sandbox.nginx test CA'"
      .. " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
    "openssl req -new " .. ec .. " -keyout server.key -out server.csr -subj "
      .. shell_quote("/CN=" .. names[1]),
    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
      .. " -out server.pem -days 2 -extfile server.ext",
    "chmod 644 *.pem && chmod 600 *.key",
  }, "\n") .. "\n} 2>&1")
  if code ~= 0 then
    error("sandbox.nginx: openssl failed:\n" .. out)
  end
  return prefix .. "/tls/ca.pem", prefix .. "/tls/server.pem", prefix .. "/tls/server.key"
end

-- The Lua module's search paths: the caller's entries first, then the
-- repository's Lua tree (path) or nginx's defaults (cpath).
local function lua_paths(opts, root)
  local lua_path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/?.lua;;"
  if opts.lua_path and opts.lua_path ~= "" then
    lua_path = opts.lua_path:gsub(";+$", "") .. ";" .. lua_path
  end
  local lua_cpath = ";;"
  if opts.lua_cpath and opts.lua_cpath ~= "" then
    lua_cpath = opts.lua_cpath:gsub(";+$", "") .. ";;"
  end
  return lua_path, lua_cpath
end

local function main_directives(opts, prefix)
  return table.concat({
    "load_module " .. MODULES .. "/ndk_http_module.so;",   -- must precede the Lua module
    "load_module " .. MODULES .. "/ngx_http_lua_module.so;",
    -- Only meaningful as root (nginx ignores it otherwise): workers then read
    -- the repo and the prefix whatever their permissions.
    is_root() and "user root root;" or "",
    "worker_processes " .. math.floor(opts.workers or 1) .. ";",
    "pid " .. q(prefix .. "/nginx.pid") .. ";",
    "error_log " .. q(prefix .. "/error.log") .. " info;",
    "events { worker_connections 1024; }",
  }, "\n")
end

-- Temp paths inside the prefix: nothing is assumed about /var/lib/nginx.
local function http_directives(opts, prefix, root)
  local lua_path, lua_cpath = lua_paths(opts, root)
  return table.concat({
    "  access_log off;",
    "  keepalive_requests 100000;",
    "  client_body_temp_path " .. q(prefix .. "/tmp/body") .. ";",
    "  proxy_temp_path " .. q(prefix .. "/tmp/proxy") .. ";",
    "  fastcgi_temp_path " .. q(prefix .. "/tmp/fastcgi") .. ";",
    "  uwsgi_temp_path " .. q(prefix .. "/tmp/uwsgi") .. ";",
    "  scgi_temp_path " .. q(prefix .. "/tmp/scgi") .. ";",
    "  lua_package_path " .. q(lua_path) .. ";",
    "  lua_package_cpath " .. q(lua_cpath) .. ";",
    opts.http or "",
  }, "\n")
end

-- A server{} block: its directives, then the caller's text for every server.
local function server_block(directives, server_body)
  return "  server {\n" .. table.concat(directives, "\n") .. "\n" .. server_body .. "\n  }"
end

local function build_config(opts, prefix, root, port, tls_port, tls)
  local server_body = opts.server or ""
  local lines = {
    main_directives(opts, prefix),
    "http {",
    http_directives(opts, prefix, root),
    server_block({ "    listen 127.0.0.1:" .. port .. ";" }, server_body),
  }
  if tls_port then
    lines[#lines + 1] = server_block({
      "    listen 127.0.0.1:" .. tls_port .. " ssl http2;",
      "    ssl_certificate " .. q(tls.cert) .. ";",
      "    ssl_certificate_key " .. q(tls.key) .. ";",
    }, server_body)
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

local Server = {}
Server.__index = Server

function Server:error_log()
  return read_file(self.prefix .. "/error.log") or ""
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  local pid = self.pid
  if pid then
    if self.watchdog_pid then run("kill " .. self.watchdog_pid .. " 2>/dev/null") end
    -- TERM is nginx's fast shutdown: the master waits for its workers, so
    -- once the master is gone the workers are too.
    local _, code = run(ALIVE_FN .. table.concat({
      "kill -TERM " .. pid .. " 2>/dev/null || exit 0",
      "i=0",
      "while alive " .. pid .. " && [ $i -lt " .. STOP_WAIT_S * 100 .. " ]; do sleep 0.01; i=$((i+1)); done",
      "alive " .. pid .. " && exit 1",
      "exit 0",
    }, "\n"))
    if code ~= 0 then
      -- A stuck master: kill it and the workers it started, by pid.
      run("kids=$(ps -o pid= --ppid " .. pid .. " 2>/dev/null); kill -KILL " .. pid
          .. " $kids 2>/dev/null; sleep 0.2")
    end
  end
  if self.prefix then
    run("rm -rf " .. shell_quote(self.prefix))
  end
end

-- Finalizer that stops the server if the caller dropped every reference.
local function attach_gc(srv)
  local function finalize() if not srv.stopped then pcall(Server.stop, srv) end end
  if _VERSION == "Lua 5.1" then
    local proxy = newproxy(true)     -- luacheck: ignore 113 (5.1/LuaJIT only)
    getmetatable(proxy).__gc = finalize
    srv._gc_proxy = proxy
  else
    srv._gc_proxy = setmetatable({}, { __gc = finalize })
  end
end

local function make_prefix()
  local out, code = run("d=$(mktemp -d \"${TMPDIR:-/tmp}/sandbox-nginx.XXXXXX\") && chmod 755 \"$d\""
    .. " && mkdir -p \"$d/tmp\" \"$d/tls\" && chmod 755 \"$d/tmp\" \"$d/tls\" && echo \"$d\"")
  if code ~= 0 then error("sandbox.nginx: mktemp failed: " .. out) end
  return trim(out)
end

local function check_opts(opts)
  assert(type(opts) == "table", "sandbox.nginx.start: expects a table of options")
  local known = { port = true, tls_port = true, tls_names = true, http = true, server = true,
    lua_path = true, lua_cpath = true, foreground = true, workers = true, on_ready = true }
  for k in pairs(opts) do
    if not known[k] then error("sandbox.nginx.start: unknown option '" .. tostring(k) .. "'", 3) end
  end
end

-- Daemon mode: nginx forks away once its sockets are bound, so a zero exit
-- means it listens; the pid file follows the fork shortly.
local function launch_daemon(srv, conf)
  local p = shell_quote(srv.prefix)
  local cmd = ALIVE_FN .. table.concat({
    "lua_pid=$PPID",
    NGINX .. " -p " .. p .. " -c " .. shell_quote(conf) .. " -e " .. shell_quote(srv.prefix .. "/error.log")
      .. " >" .. shell_quote(srv.prefix .. "/stderr.log") .. " 2>&1 </dev/null || exit 1",
    "i=0; while [ ! -s " .. p .. "/nginx.pid ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done",
    "[ -s " .. p .. "/nginx.pid ] || exit 2",
    "ngx=$(cat " .. p .. "/nginx.pid)",
    -- The watchdog: stops nginx and removes the prefix if the Lua process dies
    -- without calling stop(); it ends by itself once nginx is gone.
    "( trap '' HUP INT; while alive $lua_pid && alive $ngx; do sleep 1; done;"
      .. " if alive $ngx; then kill -TERM $ngx; sleep 2; rm -rf " .. p .. "; fi"
      .. " ) </dev/null >/dev/null 2>&1 &",
    "echo \"$ngx $!\"",
  }, "\n")
  local out, code = run(cmd)
  if code ~= 0 then return false end
  local pid, dog = out:match("(%d+)%s+(%d+)")
  srv.pid, srv.watchdog_pid = tonumber(pid), tonumber(dog)
  return true
end

-- Foreground mode: a shell wrapper runs nginx with daemon off, forwards
-- INT/TERM/HUP to it, stops it if the Lua process goes away, and reports
-- "ready PID", a "tick" a second, then "exit CODE" on its stdout.
local function foreground_script(srv, conf)
  local p = shell_quote(srv.prefix)
  return ALIVE_FN .. table.concat({
    "lua_pid=$PPID",
    NGINX .. " -p " .. p .. " -c " .. shell_quote(conf) .. " -e " .. shell_quote(srv.prefix .. "/error.log")
      .. " -g 'daemon off;' >>" .. shell_quote(srv.prefix .. "/stderr.log") .. " 2>&1 </dev/null &",
    "ngx=$!",
    "trap 'kill -TERM $ngx 2>/dev/null' INT TERM HUP",
    "i=0; while [ ! -s " .. p .. "/nginx.pid ] && alive $ngx && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done",
    "if [ -s " .. p .. "/nginx.pid ]; then echo \"ready $ngx\"; fi",
    -- The watchdog also ticks once a second: the line wakes Lua from its
    -- read, so a SIGINT sent to Lua alone is acted on (in 5.1 and LuaJIT
    -- the read would otherwise resume and block).
    "( trap '' PIPE; while alive $lua_pid && alive $ngx; do sleep 1 </dev/null >/dev/null 2>&1;"
      .. " echo tick 2>/dev/null; done; kill -TERM $ngx 2>/dev/null ) </dev/null 2>/dev/null &",
    "dog=$!",
    -- wait returns early when a trapped signal arrives: wait again (bounded).
    "st=0; n=0; while [ $n -lt 100 ]; do wait $ngx; st=$?; kill -0 $ngx 2>/dev/null || break; n=$((n+1)); done",
    "kill $dog 2>/dev/null",
    "if alive $lua_pid; then echo $st >" .. p .. "/exit_code; else rm -rf " .. p .. "; fi",
    "echo \"exit $st\"",
  }, "\n")
end

-- One line from the wrapper into fg (srv, pipe, on_ready, ready, exit_code);
-- a "tick" is there only to wake the read.
local function take_report(fg, line)
  local pid = line:match("^ready (%d+)")
  if pid then
    fg.ready, fg.srv.pid = true, tonumber(pid)
    if fg.on_ready then fg.on_ready(fg.srv) end
  end
  local code = line:match("^exit (%d+)")
  if code then fg.exit_code = tonumber(code) end
end

-- Reads until the wrapper closes the pipe, which it does once nginx exited.
local function read_all(fg)
  for line in fg.pipe:lines() do take_report(fg, line) end
end

-- Ctrl-C reaches nginx (which exits) and Lua, where lua.c makes it an
-- "interrupted!" error at the next instruction, and 5.4 also breaks the
-- read with EINTR. Both are caught, at two levels because the hook may
-- fire just after the inner pcall returns, and reading resumes until the
-- wrapper reports nginx's exit.
local function is_interrupt(err)
  err = tostring(err)
  return err:find("interrupted!", 1, true) or err:find("Interrupted system call", 1, true)
end

-- A SIGINT sent to Lua alone (not the process group) must still stop nginx.
local function interrupted(srv)
  if not srv.interrupted and srv.pid then
    os.execute("kill -TERM " .. srv.pid .. " 2>/dev/null")
  end
  srv.interrupted = true
end

-- The inner level: reads on after each interrupt; raises anything else.
local function drive(fg)
  for _ = 1, 20 do
    local ok, err = pcall(read_all, fg)
    if ok then return end
    if not is_interrupt(err) then error(err, 0) end
    interrupted(fg.srv)
  end
end

-- The outer level: returns the error that was not an interrupt, if any.
local function drive_through_interrupts(fg)
  for _ = 1, 20 do
    local ok, err = pcall(drive, fg)
    if ok then return nil end
    if not is_interrupt(err) then return err end
    interrupted(fg.srv)
  end
end

local function launch_foreground(srv, conf, on_ready)
  write_file(srv.prefix .. "/run.sh", foreground_script(srv, conf) .. "\n")
  local pipe = assert(io.popen("unset LD_PRELOAD; exec sh " .. shell_quote(srv.prefix .. "/run.sh"), "r"))
  local fg = { srv = srv, pipe = pipe, on_ready = on_ready, ready = false }
  local failure = drive_through_interrupts(fg)
  pcall(pipe.close, pipe)
  srv.exit_code = fg.exit_code or tonumber(read_file(srv.prefix .. "/exit_code") or "")
  if failure then
    srv:stop()
    error(failure, 0)
  end
  return fg.ready or srv.interrupted
end

local function start_error(srv, what)
  local text = (read_file(srv.prefix .. "/stderr.log") or "") .. (srv:error_log())
  return "sandbox.nginx: " .. what .. " (prefix " .. srv.prefix .. ")\n" .. text
end

-- This attempt's ports (random unless given) and the URLs that follow.
local function assign_ports(srv, opts)
  local want_tls = opts.tls_port
  local port = opts.port or pick_port({})
  local tls_port = want_tls and (type(want_tls) == "number" and want_tls or pick_port({ [port] = true })) or nil
  srv.port, srv.tls_port = port, tls_port
  srv.url = "http://127.0.0.1:" .. port
  srv.tls_url = tls_port and ("https://127.0.0.1:" .. tls_port) or nil
end

-- The config for this attempt's ports, and empty logs, so that a failed
-- attempt's "Address already in use" is not read again.
local function write_attempt_files(srv, opts, root)
  local conf = srv.prefix .. "/nginx.conf"
  write_file(conf, build_config(opts, srv.prefix, root, srv.port, srv.tls_port,
    { cert = srv.cert_file, key = srv.key_file }))
  write_file(srv.prefix .. "/stderr.log", "")
  write_file(srv.prefix .. "/error.log", "")
  return conf
end

local function launch(srv, conf, opts)
  if opts.foreground then
    return launch_foreground(srv, conf, opts.on_ready)
  end
  return launch_daemon(srv, conf)
end

-- A port taken since it was picked is worth new random ports, unless every
-- port is fixed.
local function worth_retrying(srv, opts, attempt)
  local log = (read_file(srv.prefix .. "/stderr.log") or "") .. srv:error_log()
  return log:find("Address already in use", 1, true)
    and attempt < START_ATTEMPTS
    and not (opts.port and (type(opts.tls_port) ~= "boolean"))
end

local function start_in(srv, opts, root)
  if opts.tls_port then
    local names = opts.tls_names or { "127.0.0.1", "localhost" }
    srv.ca_file, srv.cert_file, srv.key_file = make_tls_files(srv.prefix, names)
  end
  for attempt = 1, START_ATTEMPTS do
    assign_ports(srv, opts)
    local conf = write_attempt_files(srv, opts, root)
    if launch(srv, conf, opts) then return srv end
    if not worth_retrying(srv, opts, attempt) then
      error(start_error(srv, "nginx did not start"), 0)
    end
  end
end

--- Starts nginx in a new prefix; the options and the server's fields are
-- described at the top of this file.
-- @tparam[opt] table opts
-- @return the server; a daemon one runs until srv:stop(), a foreground one
-- has already stopped
function M.start(opts)
  opts = opts or {}
  check_opts(opts)
  local root = repo_root()
  local srv = setmetatable({ prefix = make_prefix() }, Server)
  local ok, err = pcall(start_in, srv, opts, root)
  if not ok then
    srv:stop()
    error(err, 2)
  end
  if opts.foreground then
    srv:stop()
  else
    attach_gc(srv)
  end
  return srv
end

M.repo_root = repo_root

return M
