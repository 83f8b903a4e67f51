-- openresty_rig: the busted side of the OpenResty specs.
--
--   local rig = require("openresty_rig").start{ echo = true }  -- in setup()
--   local data = rig:run([[ return (transport():request("GET", "/anything")) ]])
--   local pending = rig:send([[ ... ]]) ... pending:wait()     -- concurrent checks
--   rig:stop()                                                 -- in teardown()
--
-- `start` builds envoke.core for LuaJIT (nginx always runs LuaJIT, whatever
-- Lua runs busted), starts the sandbox, the echo server when `echo` is set,
-- and the rig's own nginx: one worker whose handlers (openresty_runner) run
-- Lua checks through the cosocket transport. `run` sends one check and
-- returns what it returned, or raises with the check's failure and traceback.
-- rig.sandbox is the sandbox_server handle (srv:fault, srv:reset, ...),
-- rig.echo the echo server's, rig.nginx the rig's own.
local socket = require "socket"
local cjson = require "cjson"
local nginx = require "sandbox.nginx"
local sandbox_server = require "sandbox_server"
local shell = require "sandbox.shell"

local M = {}

local function support_dir()
  local source = debug.getinfo(1, "S").source
  local dir = source:sub(1, 1) == "@" and source:sub(2):match("^(.*)/[^/]*$") or "spec/support"
  if dir:sub(1, 1) ~= "/" then dir = nginx.repo_root() .. "/" .. dir:gsub("^%./", "") end
  return dir
end

local built = false

--- Builds build/luajit/envoke/core.so (make is a no-op when it is current).
function M.build()
  if built then return end
  local out, code = shell.run("cd " .. shell.quote(nginx.repo_root()) .. " && make -s LUA=luajit")
  if code ~= 0 then error("openresty_rig: make LUA=luajit failed:\n" .. out, 0) end
  built = true
end

local SERVER = [[
    client_max_body_size 4m;
    client_body_buffer_size 4m;
    location = /run {
      content_by_lua_block { require("openresty_runner").run() }
    }
    location = /run/trusted {
      %s
      content_by_lua_block { require("openresty_runner").run() }
    }
    location = /phases {
      set_by_lua_block $probe_set { return require("openresty_runner").probe("set") }
      header_filter_by_lua_block { require("openresty_runner").probe("header_filter") }
      body_filter_by_lua_block { require("openresty_runner").probe("body_filter") }
      log_by_lua_block { require("openresty_runner").probe("log") }
      content_by_lua_block {
        ngx.header["Content-Type"] = "application/json"
        ngx.print(require("cjson").encode(require("openresty_runner").probes()))
      }
    }
]]

local Rig = {}
Rig.__index = Rig

--- Starts everything; opts: `echo` (true: an echo server with TLS too).
function M.start(opts)
  opts = opts or {}
  M.build()
  local rig = setmetatable({}, Rig)
  local ok, problem = pcall(function()
    rig.sandbox = sandbox_server.start()
    if opts.echo then rig.echo = require("echo_server").start() end
    local settings = {
      sandbox = { url = rig.sandbox.url, api_id = rig.sandbox.api_id, api_key = rig.sandbox.api_key,
                  port = rig.sandbox.port },
      echo = rig.echo and { url = rig.echo.url, tls_port = rig.echo.tls_port, port = rig.echo.port,
                            ca_file = rig.echo.ca_file } or nil,
    }
    local trusted = rig.echo and ('lua_ssl_trusted_certificate "' .. rig.echo.ca_file .. '";') or ""
    local root = nginx.repo_root()
    rig.nginx = nginx.start{
      workers = 1,
      lua_path = support_dir() .. "/?.lua",
      lua_cpath = root .. "/build/luajit/?.so",
      http = "  lua_socket_log_errors off;\n"
        .. "  init_by_lua_block { require(\"openresty_runner\").init(" .. ("%q"):format(cjson.encode(settings))
        .. ") }\n"
        .. "  init_worker_by_lua_block { require(\"openresty_runner\").init_worker() }\n",
      server = SERVER:format(trusted),
    }
    rig.url, rig.port = rig.nginx.url, rig.nginx.port
    -- The worker's start-up timer calls the sandbox: let it finish first, so
    -- it can never take a fault a spec adds.
    for _ = 1, 500 do
      if rig:run("return probes.timer ~= nil and probes.timer.done == true") then return end
      socket.sleep(0.01)
    end
    error("openresty_rig: the worker's start-up timer never finished")
  end)
  if not ok then
    rig:stop()
    error(problem, 2)
  end
  return rig
end

--- Stops every nginx the rig started (idempotent).
function Rig:stop()
  if self.nginx then self.nginx:stop() end
  if self.echo then self.echo:stop() end
  if self.sandbox then self.sandbox:stop() end
end

-- One HTTP/1.0 exchange: nginx answers and closes, so the body ends at EOF.
local function open(port, method, path, body)
  local conn = socket.tcp()
  conn:settimeout(120)
  assert(conn:connect("127.0.0.1", port))
  local head = method .. " " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n"
  if body then head = head .. "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n" end
  assert(conn:send(head .. "\r\n" .. (body or "")))
  return conn
end

local function read(conn)
  local raw, err, partial = conn:receive("*a")
  conn:close()
  raw = raw or partial
  if not raw or raw == "" then error("openresty_rig: no answer from the rig's nginx: " .. tostring(err), 3) end
  local status = tonumber(raw:match("^HTTP/%d%.%d (%d%d%d)"))
  local body = raw:match("\r\n\r\n(.*)$") or ""
  return status, body
end

local Pending = {}
Pending.__index = Pending

-- The check's outcome: what it returned, or a raise with its failure.
local function outcome(status, body)
  local ok, decoded = pcall(cjson.decode, body)
  if status ~= 200 or not ok then
    error(("openresty_rig: the rig answered %s: %s"):format(tostring(status), body:sub(1, 2000)), 3)
  end
  if not decoded.ok then error("inside nginx: " .. tostring(decoded.message), 3) end
  if decoded.data == cjson.null then return nil end
  return decoded.data
end

--- Waits for a check sent with `send`.
function Pending:wait()
  local status, body = read(self.conn)
  self.finished_at = socket.gettime()
  return outcome(status, body)
end

--- Sends a check and returns at once; `:wait()` reads its outcome.
function Rig:send(code, args, where)
  local body = cjson.encode{ code = code, args = args }
  return setmetatable({ conn = open(self.port, "POST", where or "/run", body), sent_at = socket.gettime() }, Pending)
end

--- Runs a check inside nginx; returns what it returned (raises on a failure).
-- opts.trusted: run it where lua_ssl_trusted_certificate names the echo server's CA.
function Rig:run(code, args, opts)
  local pending = self:send(code, args, opts and opts.trusted and "/run/trusted" or "/run")
  return pending:wait()
end

--- POST of a urlencoded form to any local port; returns status, body.
function M.post_form(port, path, fields)
  local parts = {}
  for _, kv in ipairs(fields) do
    parts[#parts + 1] = kv[1] .. "=" .. kv[2]:gsub("[^%w%-%._~]", function(c)
      return ("%%%02X"):format(c:byte())
    end)
  end
  local body = table.concat(parts, "&")
  local conn = socket.tcp()
  conn:settimeout(60)
  assert(conn:connect("127.0.0.1", port))
  assert(conn:send("POST " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n"
    .. "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body))
  return read(conn)
end

--- GET on any local port; returns status, body.
function M.get(port, path)
  return read(open(port, "GET", path))
end

--- Runs nginx on a whole configuration file of one's own (an example's),
-- with environment variables, in a fresh prefix (with logs/). `edit(text,
-- port)` returns the text to write. Returns { url, port, prefix, stop(),
-- error_log() }; stop() is idempotent and also runs when the handle is
-- garbage-collected.
function M.launch(conf_text, edit, env)
  local prefix = shell.tmpdir("envoke-openresty")
  -- The workers may run as another user: they read the prefix, and write its logs.
  shell.run("chmod 755 " .. shell.quote(prefix) .. " && mkdir -m 755 " .. shell.quote(prefix .. "/logs"))
  local handle = { prefix = prefix }
  function handle.error_log() return shell.read_file(prefix .. "/logs/error.log") or "" end
  function handle.stop()
    if handle.stopped then return end
    handle.stopped = true
    if handle.pid then
      -- TERM stops the master after its workers; a zombie master counts as gone.
      local pid = handle.pid
      shell.run("alive() { s=$(sed 's/.*) //' /proc/" .. pid .. "/stat 2>/dev/null) || return 1;"
        .. " case \"$s\" in Z*|X*|'') return 1;; esac; }; kill -TERM " .. pid .. " 2>/dev/null; i=0;"
        .. " while alive && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done;"
        .. " alive && kill -KILL " .. pid .. " $(ps -o pid= --ppid " .. pid .. ") 2>/dev/null; true")
    end
    shell.run("rm -rf " .. shell.quote(prefix))
  end
  local exports = {}
  for k, v in pairs(env or {}) do exports[#exports + 1] = k .. "=" .. shell.quote(v) end
  for _ = 1, 5 do
    local probe = socket.bind("127.0.0.1", 0)
    local _, port = probe:getsockname()
    probe:close()
    local edited, text = pcall(edit, conf_text, tonumber(port))
    if not edited then
      handle.stop()
      error(text, 2)
    end
    shell.write_file(prefix .. "/nginx.conf", text)
    local out, rc = shell.run(table.concat(exports, " ") .. " nginx -p " .. shell.quote(prefix) .. " -c "
      .. shell.quote(prefix .. "/nginx.conf") .. " -e " .. shell.quote(prefix .. "/logs/error.log")
      .. " && i=0 && while [ ! -s " .. shell.quote(prefix .. "/logs/nginx.pid") .. " ] && [ $i -lt 500 ];"
      .. " do sleep 0.01; i=$((i+1)); done && cat " .. shell.quote(prefix .. "/logs/nginx.pid"))
    if rc == 0 then
      handle.pid = tonumber(out:match("(%d+)%s*$"))
      handle.port, handle.url = tonumber(port), "http://127.0.0.1:" .. port
      -- Stops nginx if the spec drops the handle (5.1 has __gc on userdata only).
      if _VERSION == "Lua 5.1" then
        handle._gc = newproxy(true) -- luacheck: ignore 113
        getmetatable(handle._gc).__gc = handle.stop
      else
        handle._gc = setmetatable({}, { __gc = handle.stop })
      end
      return handle
    end
    if not (out .. handle.error_log()):find("Address already in use", 1, true) then
      local log = handle.error_log()
      handle.stop()
      error("openresty_rig: nginx did not start:\n" .. out .. log, 2)
    end
  end
  handle.stop()
  error("openresty_rig: no free port for nginx", 2)
end

--- GET on the rig itself; returns status, body.
function Rig:get(path)
  return read(open(self.port, "GET", path))
end

return M
