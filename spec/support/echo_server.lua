-- echo_server: the real HTTP server the core's specs talk to.
--
-- One file, two sides:
--  * spec side:  echo_server.start(opts) starts a private nginx (sandbox.nginx)
--    on 127.0.0.1 with plain HTTP and HTTPS+HTTP/2 and returns its handle
--    (srv.url, srv.tls_url, srv.ca_file, srv:stop(), srv:error_log()).
--  * nginx side: the handlers below, which nginx loads with require from this
--    same file (they only touch `ngx`, so the spec side never calls them).
--
-- Endpoints (any method):
--   /anything          echo the request as JSON (see echo() for the fields)
--   /status/N          answer with status N (and the echo as body when allowed)
--   /reply/N           answer with status N and the request's body as the body (JSON)
--   /bytes/N           N bytes of pattern(N), with Content-Length
--   /chunked/N         N bytes of pattern(N) in ?pieces=K flushed pieces, chunked
--   /gzip/...          like / but through nginx's gzip filter (when accepted);
--                      /gzip/bytes/N sends pattern(N) gzipped
--   /delay/MS          wait MS ms, then echo (with started/finished times)
--   /drop              close the connection without any answer (444)
--   /truncated/N       HTTP/1.1 200 with Content-Length N, N/2 bytes, then close
--   /chunked-truncated/N  chunked, N/2 bytes, connection closed before the last chunk
--   /headers           response headers in mixed case, one repeated
--   /redirect          302 to /echo (must not be followed by the core)

local M = {}

-- The nginx side runs inside nginx's Lua module, where ngx is a global.
-- luacheck: globals ngx

-- The bytes /bytes/N and /chunked/N send: byte i (0-based) is i % 256, so
-- every byte value, NUL included, occurs and truncation or reordering shows.
local block = {}
for i = 0, 255 do block[#block + 1] = string.char(i) end
block = table.concat(block)

function M.pattern(n)
  local whole = math.floor(n / 256)
  return block:rep(whole) .. block:sub(1, n - whole * 256)
end

---------------------------------------------------------------- nginx side

local request_body = require("sandbox.host").request_body

local function now()
  ngx.update_time()
  return ngx.now()
end

-- Everything a spec may want to check about the request as received.
local function describe(started)
  local cjson = require "cjson"
  local body = request_body()
  local raw_header = ngx.var.server_protocol ~= "HTTP/2.0" and ngx.req.raw_header() or cjson.null
  return {
    method = ngx.req.get_method(),
    uri = ngx.var.request_uri,            -- as sent: path and raw query
    path = ngx.var.uri,                   -- decoded path
    query = ngx.var.args or cjson.null,   -- raw query string
    args = ngx.req.get_uri_args(0),
    headers = ngx.req.get_headers(0),     -- lowercased names; repeats as arrays
    raw_header = raw_header,              -- HTTP/1 header block as received
    body = body,
    body_length = #body,
    protocol = ngx.var.server_protocol,   -- "HTTP/1.1", "HTTP/2.0"
    request_line = ngx.var.request,       -- absolute-form when sent to a proxy
    host = ngx.var.host,
    scheme = ngx.var.scheme,
    connection = tonumber(ngx.var.connection),        -- TCP connection serial
    connection_requests = tonumber(ngx.var.connection_requests),
    remote_port = tonumber(ngx.var.remote_port),
    server_port = tonumber(ngx.var.server_port),
    started = started or now(),
    finished = now(),
  }
end

local function send_json(value)
  local cjson = require "cjson"
  ngx.header["Content-Type"] = "application/json"
  ngx.print(cjson.encode(value))
end

local function echo()
  send_json(describe())
end

local function status(code)
  ngx.status = code
  if code == 204 or code == 304 or code < 200 then
    return ngx.exit(code)
  end
  if code >= 300 and code < 400 then
    ngx.header["Location"] = "/echo"
  end
  send_json(describe())
end

local function bytes(n)
  ngx.header["Content-Type"] = "application/octet-stream"
  ngx.header["Content-Length"] = n
  local step = 1048576
  for offset = 0, n - 1, step do
    local len = math.min(step, n - offset)
    -- offset is a multiple of 256, so the pattern restarts cleanly.
    ngx.print(M.pattern(len))
  end
end

local function chunked(n, pieces, gap_ms)
  ngx.header["Content-Type"] = "application/octet-stream"
  local data = M.pattern(n)
  local size = math.max(1, math.ceil(n / pieces))
  for offset = 1, n, size do
    ngx.print(data:sub(offset, offset + size - 1))
    ngx.flush(true)
    if gap_ms > 0 then ngx.sleep(gap_ms / 1000) end
  end
end

-- Writes a raw HTTP/1.1 response on the request's socket and closes it, to
-- produce what nginx itself never would: a short body.
local function raw_response(head, payload)
  ngx.req.read_body()
  local sock = assert(ngx.req.socket(true))
  sock:send(head .. payload)
  ngx.sleep(0.05)
  return ngx.exit(444)
end

local function truncated(n)
  local half = M.pattern(math.floor(n / 2))
  raw_response("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "
    .. n .. "\r\n\r\n", half)
end

local function chunked_truncated(n)
  local half = M.pattern(math.floor(n / 2))
  raw_response("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    string.format("%x\r\n", #half) .. half .. "\r\n")
end

function M.handle()
  local path = ngx.var.uri
  local n = tonumber(path:match("^/status/(%d+)$"))
  if n then return status(n) end
  n = tonumber(path:match("^/reply/(%d+)$"))
  if n then
    ngx.status = n
    ngx.header["Content-Type"] = "application/json"
    return ngx.print(request_body())
  end
  n = tonumber(path:match("^/bytes/(%d+)$"))
  if n then return bytes(n) end
  n = tonumber(path:match("^/chunked/(%d+)$"))
  if n then
    local args = ngx.req.get_uri_args()
    return chunked(n, tonumber(args.pieces) or 8, tonumber(args.gap_ms) or 0)
  end
  n = tonumber(path:match("^/delay/(%d+)$"))
  if n then
    local started = now()
    ngx.sleep(n / 1000)
    return send_json(describe(started))
  end
  if path == "/drop" then return ngx.exit(444) end
  n = tonumber(path:match("^/truncated/(%d+)$"))
  if n then return truncated(n) end
  n = tonumber(path:match("^/chunked%-truncated/(%d+)$"))
  if n then return chunked_truncated(n) end
  if path == "/headers" then
    ngx.header["X-Mixed-Case"] = "Mixed"
    ngx.header["X-Repeated"] = { "one", "two" }
    return echo()
  end
  if path == "/redirect" then
    return ngx.redirect("/echo", 302)
  end
  return echo()
end

function M.handle_gzip()
  local n = tonumber(ngx.var.uri:match("^/gzip/bytes/(%d+)$"))
  if n then return bytes(n) end
  return echo()
end

------------------------------------------------------------------ spec side

local SERVER_CONF = [[
    client_max_body_size 0;
    client_body_buffer_size 64m;
    location / {
      content_by_lua_block { require("echo_server").handle() }
    }
    location /gzip/ {
      gzip on;
      gzip_types *;
      gzip_min_length 1;
      gzip_comp_level 1;
      content_by_lua_block { require("echo_server").handle_gzip() }
    }
]]

local function support_dir()
  local source = debug.getinfo(1, "S").source
  local dir = source:sub(1, 1) == "@" and source:sub(2):match("^(.*)/[^/]*$") or "spec/support"
  return dir
end

-- opts: tls (default true), tls_names (for the certificate), workers.
function M.start(opts)
  opts = opts or {}
  local nginx = require "sandbox.nginx"
  local dir = support_dir()
  if dir:sub(1, 1) ~= "/" then   -- relative to the working directory, like package.path
    local pipe = assert(io.popen("pwd"))
    local cwd = pipe:read("*l")
    pipe:close()
    dir = cwd .. "/" .. dir:gsub("^%./", "")
  end
  return nginx.start{
    tls_port = opts.tls ~= false or nil,
    tls_names = opts.tls_names,
    workers = opts.workers or 1,
    lua_path = dir .. "/?.lua",
    server = SERVER_CONF,
  }
end

return M
