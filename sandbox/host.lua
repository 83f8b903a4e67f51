--- The sandbox's HTTP host: the pure-Lua core (`envoke.sandbox`) served by
-- nginx with the Lua module, through the shared launcher `sandbox.nginx`.
--
-- One file, three roles:
--
-- * library: `host.start{...}` starts a sandbox server in the background
--   and returns it (`url`, `tls_url`, `ca_file`, `port`, `stop()`, ...);
-- * command: `sandbox/run` runs `host.main(args)`, a server in the
--   foreground until SIGINT/SIGTERM;
-- * nginx side: `host.configure`, `host.init_worker`, `host.handle`,
--   `host.too_large`, which nginx's Lua module calls.
--
-- nginx runs one worker: the sandbox's state lives in that worker's Lua VM.
-- @module sandbox.host

local host = {}

-- luacheck: globals ngx
-- (the nginx side runs inside the Lua module, where ngx is a global)

local MAX_BODY = 1024 * 1024

---------------------------------------------------------------------------
-- nginx side
---------------------------------------------------------------------------

local config, instance

-- One webhook delivery (envoke.sandbox.hooks), posted from a timer: the
-- sandbox's answers never wait for a receiver. HTTP/1.1 with Connection:
-- close, IP or localhost hosts only (no resolver is configured); `done`
-- gets the status, or nil and what went wrong.
local function post_delivery(premature, request, done)
  if premature then return done(nil, "nginx is shutting down") end
  local scheme, name, port, path = request.url:match("^(https?)://([^/:]+):?(%d*)(/?[^#]*)")
  if not scheme then return done(nil, "cannot parse the URL") end
  if name == "localhost" then name = "127.0.0.1" end
  local sock = ngx.socket.tcp()
  sock:settimeout(5000)
  local ok, err = sock:connect(name, tonumber(port) or (scheme == "https" and 443 or 80))
  if ok and scheme == "https" then ok, err = sock:sslhandshake(nil, name, false) end
  if not ok then return done(nil, "connect: " .. tostring(err)) end
  local head = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nUser-Agent: Envoke-Sandbox\r\n"
    .. "Content-Length: %d\r\nConnection: close\r\n\r\n"):format(path ~= "" and path or "/", name, #request.body)
  ok, err = sock:send(head .. request.body)
  local line = ok and sock:receive("*l")
  sock:close()
  local status = line and tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then return done(nil, "no HTTP answer: " .. tostring(err or line)) end
  return done(status)
end

local function deliver(request, done)
  local ok, err = ngx.timer.at(0, post_delivery, request, done)
  if not ok then done(nil, "timer: " .. tostring(err)) end
end

--- Stores the server's options (JSON text); runs in nginx's init phase.
function host.configure(json_text)
  config = require("cjson").decode(json_text)
end

--- Creates the worker's sandbox.
function host.init_worker()
  local Sandbox = require "envoke.sandbox"
  local cjson = require "cjson"
  local function opt(v) if v == cjson.null then return nil end return v end
  instance = Sandbox.new {
    api_id = config.api_id,
    api_key = config.api_key,
    token = opt(config.token),
    catalogue = opt(config.catalogue),
    data_file = opt(config.data_file),
    -- ngx.sleep yields, so other requests go on while a delayed one waits.
    sleep = ngx.sleep,
    deliver = deliver, -- webhooks, through cosockets from a timer
  }
end

local function request_headers()
  local out = {}
  for name, value in pairs(ngx.req.get_headers(200, true)) do
    if type(value) == "table" then value = table.concat(value, ", ") end
    out[name:lower()] = value
  end
  return out
end

--- The request body, also when nginx spilled a large one to a file.
function host.request_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local file = ngx.req.get_body_file()
  if not file then return "" end
  local f = assert(io.open(file, "rb"))
  body = f:read("*a")
  f:close()
  return body
end

-- A short body under a full Content-Length, which nginx itself never sends:
-- on HTTP/1 written raw on the request's socket, on HTTP/2 cut by a reset.
local function send_truncated(status, headers, body, keep)
  local response = require "envoke.sandbox.response"
  if ngx.var.server_protocol ~= "HTTP/2.0" then
    local sock = assert(ngx.req.socket(true))
    local head = { ("HTTP/1.1 %d %s"):format(status, response.reason(status)) }
    for k, v in pairs(headers) do head[#head + 1] = k .. ": " .. v end
    head[#head + 1] = "Content-Length: " .. #body
    head[#head + 1] = "Connection: close"
    sock:send(table.concat(head, "\r\n") .. "\r\n\r\n" .. body:sub(1, keep))
    ngx.sleep(0.05)
    return ngx.exit(444)
  end
  ngx.status = status
  for k, v in pairs(headers) do ngx.header[k] = v end
  ngx.header["Content-Length"] = #body
  ngx.print(body:sub(1, keep))
  ngx.flush(true)
  return ngx.exit(444)
end

local function respond(status, headers, body, action)
  if action and action.delay_ms then ngx.sleep(action.delay_ms / 1000) end
  if action and action.kind == "drop" then return ngx.exit(444) end
  if action and action.kind == "truncate" then return send_truncated(status, headers, body, action.send) end
  ngx.status = status
  for k, v in pairs(headers) do ngx.header[k] = v end
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.HTTP_OK)
end

--- Answers one request (content_by_lua).
function host.handle()
  local body = host.request_body()
  return respond(instance:handle(ngx.req.get_method(), ngx.var.uri, ngx.var.args or "",
    request_headers(), body))
end

--- Answers a body nginx refused as larger than 1 MiB (error_page 413), so
-- it too gets the JSON envelope and a line in the request log.
function host.too_large()
  local length = tonumber(ngx.var.content_length) or (MAX_BODY + 1)
  -- The core only needs the length; the bytes were never read.
  local status, headers, body = instance:handle(ngx.req.get_method(), ngx.var.uri, ngx.var.args or "",
    request_headers(), nil, length)
  ngx.status = status
  for k, v in pairs(headers) do ngx.header[k] = v end
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.HTTP_OK)
end

---------------------------------------------------------------------------
-- Library side
---------------------------------------------------------------------------

local SERVER_CONF = [[
    client_max_body_size 1m;
    client_body_buffer_size 1100k;
    error_page 413 = @too_large;
    location / {
      content_by_lua_block { require("sandbox.host").handle() }
    }
    location @too_large {
      content_by_lua_block { require("sandbox.host").too_large() }
    }
]]

local read_file = require("sandbox.shell").read_file

local function absolute(path)
  if not path or path:sub(1, 1) == "/" then return path end
  local cwd = os.getenv("PWD")
  if not cwd then
    local pipe = io.popen("pwd")
    cwd = pipe:read("*l")
    pipe:close()
  end
  return cwd .. "/" .. path:gsub("^%./", "")
end

-- Checks the options in this process first, so a bad catalogue or data file
-- is reported here and not as a failing nginx worker.
local function prepare(opts)
  local cjson = require "cjson"
  local Sandbox = require "envoke.sandbox"
  local catalogue = opts.catalogue
  if opts.catalogue_file then
    local text = read_file(opts.catalogue_file)
    if not text then error("cannot read the catalogue file " .. opts.catalogue_file, 0) end
    local ok, decoded = pcall(cjson.decode, text)
    if not ok or type(decoded) ~= "table" then
      error("catalogue file " .. opts.catalogue_file .. " is not a JSON object", 0)
    end
    catalogue = decoded
  end
  local data_file = absolute(opts.data_file)
  -- Raises on an invalid catalogue or data file (the messages say which).
  Sandbox.new { catalogue = catalogue, data_file = data_file }
  return {
    api_id = opts.api_id or os.getenv("ENVOKE_API_ID") or "sandbox",
    api_key = opts.api_key or os.getenv("ENVOKE_API_KEY") or "sandbox",
    token = opts.token or os.getenv("ENVOKE_API_TOKEN") or cjson.null,
    catalogue = catalogue or cjson.null,
    data_file = data_file or cjson.null,
  }
end

local function nginx_options(opts, settings)
  local cjson = require "cjson"
  return {
    port = opts.port,
    tls_port = opts.tls_port,
    http = "  lua_socket_log_errors off;\n"
      .. "  init_by_lua_block { require(\"sandbox.host\").configure(" .. ("%q"):format(cjson.encode(settings))
      .. ") }\n"
      .. "  init_worker_by_lua_block { require(\"sandbox.host\").init_worker() }\n",
    server = SERVER_CONF,
    foreground = opts.foreground,
    on_ready = opts.on_ready,
  }
end

--- Starts a sandbox server in the background.
-- @tparam[opt] table opts
--   `port` (default: random), `tls_port` (true or a number: HTTPS + HTTP/2),
--   `api_id`, `api_key`, `token` (default: $ENVOKE_API_ID, $ENVOKE_API_KEY,
--   $ENVOKE_API_TOKEN, then sandbox/sandbox/none), `catalogue` (a table) or
--   `catalogue_file` (JSON), `data_file`
-- @treturn table `{ url, tls_url, ca_file, port, tls_port, api_id, api_key,
--   stop = function, error_log = function }`
function host.start(opts)
  opts = opts or {}
  local settings = prepare(opts)
  local nginx = require "sandbox.nginx"
  local srv = nginx.start(nginx_options(opts, settings))
  local server = {
    url = srv.url, tls_url = srv.tls_url, ca_file = srv.ca_file,
    port = srv.port, tls_port = srv.tls_port, prefix = srv.prefix,
    api_id = settings.api_id, api_key = settings.api_key,
    nginx = srv,
  }
  function server.stop() srv:stop() end
  function server.error_log() return srv:error_log() end
  return server
end

local USAGE = [[
usage: sandbox/run [--port PORT] [--tls-port PORT] [--data FILE] [--catalogue FILE]

Serves the Envoke contacts API sandbox on 127.0.0.1 until Ctrl-C / SIGTERM.
  --port PORT        HTTP port (default: a random free one)
  --tls-port PORT    also HTTPS with HTTP/2, certificate signed by a fresh CA
  --data FILE        keep contacts in FILE (JSON, written atomically)
  --catalogue FILE   interests, subscriptions, nurtures, custom fields, settings (JSON)
Credentials: $ENVOKE_API_ID / $ENVOKE_API_KEY (default sandbox / sandbox).
]]

local function parse_args(args)
  local opts, i = {}, 1
  local function value(flag)
    i = i + 1
    local v = args[i]
    if v == nil then error(flag .. " needs a value", 0) end
    return v
  end
  local function port(flag)
    local p = tonumber(value(flag))
    if not p or p < 1 or p > 65535 or p ~= math.floor(p) then error(flag .. " needs a port number", 0) end
    return p
  end
  while args[i] ~= nil do
    local a = args[i]
    if a == "--port" then opts.port = port(a)
    elseif a == "--tls-port" then opts.tls_port = port(a)
    elseif a == "--data" then opts.data_file = value(a)
    elseif a == "--catalogue" then opts.catalogue_file = value(a)
    elseif a == "-h" or a == "--help" then opts.help = true
    else error("unknown argument " .. a, 0) end
    i = i + 1
  end
  return opts
end

-- nginx's own report of a busy port is a dozen bind() retries: one line says it.
local function start_failure(message)
  local port = message:match("bind%(%) to [%d.]+:(%d+) failed %(98: Address already in use%)")
  if port then
    return "port " .. port .. " is already in use (choose another, or leave the option out for a free one)"
  end
  return message
end

--- `sandbox/run`: serves in the foreground; returns the exit code.
function host.main(args)
  local ok, opts = pcall(parse_args, args)
  if not ok then
    io.stderr:write("sandbox/run: ", tostring(opts), "\n", USAGE)
    return 2
  end
  if opts.help then
    io.stdout:write(USAGE)
    return 0
  end
  local good, settings = pcall(prepare, opts)
  if not good then
    io.stderr:write("sandbox/run: ", tostring(settings), "\n")
    return 1
  end
  opts.foreground = true
  opts.on_ready = function(srv)
    local lines = {
      "Envoke sandbox ready (Ctrl-C to stop)",
      "  ENVOKE_BASE_URL=" .. srv.url,
      "  ENVOKE_API_ID=" .. settings.api_id,
      "  ENVOKE_API_KEY=" .. settings.api_key,
    }
    if srv.tls_url then
      lines[#lines + 1] = "  HTTPS (HTTP/2): " .. srv.tls_url
      lines[#lines + 1] = "  ENVOKE_CA_FILE=" .. srv.ca_file
    end
    if type(settings.data_file) == "string" then lines[#lines + 1] = "  data file: " .. settings.data_file end
    lines[#lines + 1] = "  test controls: " .. srv.url .. "/_sandbox"
    io.stdout:write(table.concat(lines, "\n"), "\n")
    io.stdout:flush()
  end
  local started, srv = pcall(require("sandbox.nginx").start, nginx_options(opts, settings))
  if not started then
    io.stderr:write("sandbox/run: ", start_failure(tostring(srv)), "\n")
    return 1
  end
  io.stdout:write("sandbox stopped\n")
  if srv.interrupted then return 0 end
  return srv.exit_code or 0
end

-- Run as a script (sandbox/run): `...` holds the arguments, not a module name.
local first = ...
if type(arg) == "table" and type(arg[0]) == "string" and arg[0]:find("host%.lua$") and first ~= "sandbox.host" then
  os.exit(host.main({ ... }))
end

return host
