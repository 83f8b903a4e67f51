--- The transport inside nginx (OpenResty, or nginx with the Lua module):
-- HTTP/1.1 over cosockets (`ngx.socket.tcp`), so a call yields to nginx's
-- event loop instead of blocking the worker and every request it serves.
--
-- Same contract as the curl transport (`request`, `submit`, `perform`,
-- `finished`, `cancel`, `pending`, `close`, and `sleep`), chosen by the client
-- by default when the `ngx` global exists. What differs inside nginx:
--
-- * Connections live in the worker's cosocket keep-alive pools, one pool per
--   base URL, TLS settings and credentials (so accounts never share one), at
--   most `pool_size` idle connections each, closed after `keepalive_timeout`
--   seconds idle. A pool outlives the client that filled it.
-- * TLS is verified by default against `lua_ssl_trusted_certificate`: the Lua
--   module (0.10.23) has no per-connection CA, so `ca_file` is not read here
--   and a failed verification says so.
-- * Host names need a `resolver` directive; `localhost` is always 127.0.0.1.
-- * Only phases that can yield have cosockets (rewrite, access, content,
--   timers, some ssl_* phases). Elsewhere (init, init_worker, set, header and
--   body filters, log) every call returns `nil, err` at once, saying so.
-- * `submit` runs each request on a light thread (`ngx.thread.spawn`) of the
--   calling request; `perform(ms)` yields until one finishes or `ms` passes.
--
-- Options of `new` beyond the client's: `pool_size` (32), `keepalive_timeout`
-- (60 seconds), for a transport made by hand and given as `transport = t`.
-- @module envoke.transport.ngx

-- luacheck: globals ngx
-- (runs inside nginx's Lua module, where ngx is a global)

local core = require "envoke.core"

local M = {}

local Transport = {}
Transport.__index = Transport

-- Per transport, what carries the credential (weak keys: it goes with its transport).
local private = setmetatable({}, { __mode = "k" })
M.Transport = Transport

local DEFAULT_MAX_BODY = 16 * 1024 * 1024
local MAX_HEADER_BYTES = 64 * 1024
local MAX_HEADER_LINES = 200

local byte, sub, find, lower, concat = string.byte, string.sub, string.find, string.lower, table.concat
local tostring, tonumber, type, pairs, pcall = tostring, tonumber, type, pairs, pcall

-- Phases where nginx can suspend Lua code: cosockets, ngx.sleep,
-- ngx.thread.spawn and semaphores exist there and nowhere else.
local YIELDABLE = { rewrite = true, access = true, content = true, timer = true,
                    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true }

-- Phases whose ngx.ctx tells requests apart (see reap).
local OWNED = { rewrite = true, access = true, content = true, timer = true }

local function yieldable()
  return YIELDABLE[ngx.get_phase()] == true
end

-- The error every call returns in a phase without cosockets. Not retryable:
-- no later attempt in the same phase can do better, and waiting is impossible.
local function phase_error()
  local phase = ngx.get_phase()
  if YIELDABLE[phase] then return nil end
  return {
    kind = "unavailable", sent = false, retryable = false, phase = phase,
    message = ("cosockets are not available in the '%s' phase, where nginx cannot yield"
      .. " (a blocking call would stall the whole worker): make the call from a timer,"
      .. " e.g. ngx.timer.at(0, function() ... end), or from the rewrite, access or content phase"):format(phase),
  }
end

local function failure(kind, message, sent)
  return { kind = kind, message = message, sent = sent, retryable = kind == "network" or kind == "timeout" }
end

--- Waits `ms` milliseconds by yielding (retries, the rate limit). A plain
-- function, as the client calls it. Where nothing can yield it returns at
-- once: the call that follows then fails with the phase error.
-- @local
function Transport.sleep(ms)
  if ms > 0 and yieldable() then ngx.sleep(ms / 1000) end
end

-- ------------------------------------------------------------------------
-- gzip: zlib's inflate through LuaJIT's FFI. nginx itself links zlib, so
-- its symbols are normally already in the process.
-- ------------------------------------------------------------------------

local zlib -- false once found unavailable

local function load_zlib()
  if zlib ~= nil then return zlib end
  zlib = false
  local ok, ffi = pcall(require, "ffi")
  if not ok then return zlib end
  -- Private names (redirected with __asm__) so another module's zlib
  -- declarations cannot clash with these.
  ok = pcall(ffi.cdef, [[
    struct envoke_z_stream {
      const char *next_in; unsigned int avail_in; unsigned long total_in;
      unsigned char *next_out; unsigned int avail_out; unsigned long total_out;
      const char *msg; void *state; void *zalloc; void *zfree; void *opaque;
      int data_type; unsigned long adler; unsigned long reserved;
    };
    int envoke_inflateInit2_(struct envoke_z_stream *s, int bits, const char *v, int size) __asm__("inflateInit2_");
    int envoke_inflate(struct envoke_z_stream *s, int flush) __asm__("inflate");
    int envoke_inflateEnd(struct envoke_z_stream *s) __asm__("inflateEnd");
    const char *envoke_zlibVersion(void) __asm__("zlibVersion");
  ]])
  if not ok then return zlib end
  local lib
  for _, name in ipairs{ false, "z", "libz.so.1" } do
    local found, candidate = pcall(function()
      local l = name and ffi.load(name) or ffi.C
      local _ = l.envoke_inflate -- resolves the symbol, or raises
      return l
    end)
    if found then lib = candidate break end
  end
  if not lib then return zlib end
  local CHUNK = 65536
  local out = ffi.new("unsigned char[?]", CHUNK)
  local stream_size = ffi.sizeof("struct envoke_z_stream")
  local version = lib.envoke_zlibVersion()
  zlib = {}
  -- Inflates a whole gzip (or zlib) body; never more than max bytes of output,
  -- so a small compressed body cannot expand without bound. The buffers are
  -- shared: nothing here yields.
  function zlib.inflate(data, max)
    local s = ffi.new("struct envoke_z_stream")
    if lib.envoke_inflateInit2_(s, 15 + 32, version, stream_size) ~= 0 then
      return nil, "protocol", "zlib could not start inflating"
    end
    s.next_in, s.avail_in = data, #data
    local parts, total = {}, 0
    local rc
    repeat
      s.next_out, s.avail_out = out, CHUNK
      rc = lib.envoke_inflate(s, 0)
      local n = CHUNK - s.avail_out
      total = total + n
      if total > max then
        lib.envoke_inflateEnd(s)
        return nil, "too_large", ("response body is larger than max_body (%d bytes) once decompressed"):format(max)
      end
      if n > 0 then parts[#parts + 1] = ffi.string(out, n) end
    until rc ~= 0
    lib.envoke_inflateEnd(s)
    if rc ~= 1 then
      return nil, "protocol", rc == -5 and "the gzip response body is truncated" or "the gzip response body is corrupt"
    end
    return concat(parts)
  end
  return zlib
end

-- ------------------------------------------------------------------------
-- Construction
-- ------------------------------------------------------------------------

local function ms(seconds) return math.floor(seconds * 1000 + 0.5) end

local function parse_base_url(url)
  if type(url) ~= "string" then error("envoke.transport.ngx: option 'base_url' is required", 4) end
  local scheme, rest = url:match("^(https?)://(.*)$")
  if not scheme then error("envoke.transport.ngx: option 'base_url' must start with http:// or https://", 4) end
  if find(url, "[?# \t]") then
    error("envoke.transport.ngx: option 'base_url' must not have a query, a fragment or spaces", 4)
  end
  local authority, prefix = rest:match("^([^/]*)(.*)$")
  if authority == "" then error("envoke.transport.ngx: option 'base_url' has no host", 4) end
  if find(authority, "@", 1, true) then
    error("envoke.transport.ngx: option 'base_url' must not carry credentials (use api_id and api_key)", 4)
  end
  local host, port = authority:match("^(%[[^%]]+%]):?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then error("envoke.transport.ngx: option 'base_url' has a bad host or port", 4) end
  local default_port = scheme == "https" and 443 or 80
  port = port ~= "" and tonumber(port) or default_port
  if port < 1 or port > 65535 then error("envoke.transport.ngx: option 'base_url' has a bad port", 4) end
  return {
    scheme = scheme, host = host, port = port,
    authority = port == default_port and host or (host .. ":" .. port),
    prefix = (prefix:gsub("/+$", "")),
  }
end

local function version_text(n)
  return ("%d.%d.%d"):format(math.floor(n / 1000000), math.floor(n / 1000) % 1000, n % 1000)
end

-- Unguessable pool names: the credentials' digest is salted per process, so a
-- pool name seen in a debug log reveals nothing about the key.
local salt

--- A transport for the client's settings (see `envoke.new`).
function M.new(s)
  if type(ngx) ~= "table" or not ngx.socket then
    error("envoke.transport.ngx: needs nginx with the Lua module (OpenResty); use transport = 'curl' elsewhere", 3)
  end
  s = s or {}
  if s.proxy and s.proxy ~= "" then
    error("envoke.transport.ngx: option 'proxy' is not supported inside nginx (cosockets connect directly)", 3)
  end
  -- These go into header lines as they are: CR or LF would smuggle in headers.
  for _, k in ipairs{ "token", "user_agent", "api_id", "api_key" } do
    if type(s[k]) == "string" and find(s[k], "[\r\n%z]") then
      error(("envoke.transport.ngx: option '%s' has CR, LF or NUL in it"):format(k), 3)
    end
  end
  local u = parse_base_url(s.base_url)
  local self = setmetatable({}, Transport)
  self.tls = u.scheme == "https"
  self.host = u.host
  self.port = u.port
  self.prefix = u.prefix
  -- nginx has no hosts file: localhost would need a resolver (curl too maps it to loopback itself).
  local bare = u.host:gsub("^%[(.*)%]$", "%1")
  self.connect_host = (bare == "localhost" or bare:sub(-10) == ".localhost") and "127.0.0.1" or u.host
  self.server_name = bare
  self.verify = s.verify ~= false
  self.ca_file = s.ca_file
  self.label = u.scheme .. "://" .. u.authority
  self.connect_ms = ms(s.connect_timeout or 5)
  self.timeout_ms = ms(s.timeout or 10)
  self.max_body = s.max_body or DEFAULT_MAX_BODY
  self.keepalive_ms = ms(s.keepalive_timeout or 60)

  local auth, identity
  if s.token then
    auth, identity = "Bearer " .. s.token, "bearer\0" .. s.token
  elseif s.api_id then
    auth = "Basic " .. ngx.encode_base64(s.api_id .. ":" .. (s.api_key or ""))
    identity = "basic\0" .. s.api_id .. "\0" .. (s.api_key or "")
  end
  salt = salt or core.random_bytes(16)
  self.pool_name = concat({ "envoke", u.scheme, self.connect_host, u.port, self.server_name,
                            self.verify and "verify" or "noverify", tostring(self.ca_file or ""),
                            identity and ngx.md5(salt .. identity) or "anonymous" }, "|")
  self.connect_opts = { pool = self.pool_name, pool_size = s.pool_size or 32 }

  self.zlib = load_zlib()
  self.user_agent = s.user_agent or ("lua-envoke/%s ngx_lua/%s"):format(core._VERSION,
    version_text(ngx.config.ngx_lua_version))
  local defaults = {
    host = u.authority, ["user-agent"] = self.user_agent, authorization = auth,
    accept = "application/json", ["accept-encoding"] = self.zlib and "gzip" or nil,
  }
  local names = { host = "Host", ["user-agent"] = "User-Agent", authorization = "Authorization",
                  accept = "Accept", ["accept-encoding"] = "Accept-Encoding" }
  local block = {}
  for _, k in ipairs{ "host", "user-agent", "authorization", "accept", "accept-encoding" } do
    if defaults[k] then block[#block + 1] = names[k] .. ": " .. defaults[k] .. "\r\n" end
  end
  -- They carry the credential: kept out of any table a caller can walk.
  private[self] = { defaults = defaults, header_block = concat(block) }
  self.stats = { requests = 0, connections = 0, reused = 0 }
  self.encode = core.json_encode
  -- Async state.
  self.next_id = 0
  self.running = {}      -- id -> job
  self.nrunning = 0
  self.done = {}         -- queue of { id, status|nil, body|err, headers }
  self.done_head, self.done_tail = 1, 0
  self.owner = setmetatable({}, { __mode = "v" }) -- id -> the request ctx that runs it
  return self
end

-- ------------------------------------------------------------------------
-- Argument checks: all raise before anything is sent, as the curl pool does
-- ------------------------------------------------------------------------

local METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true, HEAD = true }
-- Headers the transport frames the message with; a caller's value would desync it.
local MANAGED = { ["content-length"] = true, ["transfer-encoding"] = true, connection = true }

local function check_request(self, method, path, body, headers)
  if self.closed then error("envoke.transport.ngx: attempt to use a closed transport", 3) end
  if type(method) ~= "string" or not METHODS[method] then
    error(("envoke.transport.ngx: unsupported HTTP method '%s'"):format(tostring(method)), 3)
  end
  if type(path) ~= "string" or byte(path, 1) ~= 47 then
    error("envoke.transport.ngx: path must start with '/'", 3)
  end
  -- A byte loop, not a pattern: LuaJIT compiles it, and this runs on every call.
  for i = 2, #path do
    local b = byte(path, i)
    if b <= 32 or b >= 127 or b == 35 then
      error(("envoke.transport.ngx: path has a byte that must be percent-encoded (byte %d, code %d)")
        :format(i, b), 3)
    end
  end
  local t = type(body)
  if t == "table" or t == "userdata" then
    local ok, encoded = pcall(self.encode, body)
    if not ok then
      error("envoke.transport.ngx: cannot encode the request body as JSON: "
        .. tostring(encoded):gsub("^envoke%.core: cannot encode JSON: ", ""), 3)
    end
    body = encoded
  elseif t ~= "string" and t ~= "nil" then
    error("envoke.transport.ngx: body must be a string, a table or nil", 3)
  end
  if body and (method == "GET" or method == "HEAD") then
    error(("envoke.transport.ngx: a %s request has no body"):format(method), 3)
  end
  if headers ~= nil then
    if type(headers) ~= "table" then error("envoke.transport.ngx: headers must be a table", 3) end
    for k, v in pairs(headers) do
      if type(k) ~= "string" then error("envoke.transport.ngx: header names must be strings", 3) end
      if type(v) ~= "string" and type(v) ~= "number" then
        error("envoke.transport.ngx: header values must be strings", 3)
      end
      if #k == 0 or #k > 256 or find(k, "[^%w!#$%%&'*+%-.^_`|~]") then
        error(("envoke.transport.ngx: header name '%s' has a character not allowed in a name"):format(k), 3)
      end
      if find(tostring(v), "[\r\n%z]") then
        error(("envoke.transport.ngx: header '%s' has CR, LF or NUL in its value"):format(k), 3)
      end
      if MANAGED[lower(k)] then
        error(("envoke.transport.ngx: header '%s' is set by the transport itself"):format(k), 3)
      end
    end
  end
  return body
end

-- ------------------------------------------------------------------------
-- One exchange
-- ------------------------------------------------------------------------

-- The request's bytes: one string on the usual path (no extra headers).
local function request_bytes(self, method, path, body, headers)
  -- As curl does: a body-less POST, PUT or PATCH still says it has none.
  local framing
  if body then
    framing = "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n"
  elseif method == "POST" or method == "PUT" or method == "PATCH" then
    framing = "Content-Length: 0\r\n\r\n"
  else
    framing = "\r\n"
  end
  if not (headers and next(headers)) then
    return method .. " " .. self.prefix .. path .. " HTTP/1.1\r\n" .. private[self].header_block .. framing
      .. (body or "")
  end
  -- The caller's headers replace defaults of the same name (any case).
  local out = { method, " ", self.prefix, path, " HTTP/1.1\r\n" }
  local given = {}
  for k in pairs(headers) do given[lower(k)] = true end
  for k, v in pairs(private[self].defaults) do
    if not given[k] then out[#out + 1] = k .. ": " .. v .. "\r\n" end
  end
  for k, v in pairs(headers) do out[#out + 1] = k .. ": " .. tostring(v) .. "\r\n" end
  if given["content-type"] then framing = framing:gsub("^Content%-Type: application/json\r\n", "") end
  out[#out + 1] = framing
  out[#out + 1] = body
  return out
end

-- What a failed read means: a timeout, or a connection cut before the answer was whole.
local function read_failure(self, err, what)
  if err == "timeout" then
    return failure("timeout",
      ("no complete answer from %s within %d ms (%s)"):format(self.label, self.timeout_ms, what), true)
  end
  return failure("network",
    ("the connection to %s failed while reading %s: %s"):format(self.label, what, tostring(err)), true)
end

-- Seconds left before the deadline, set as the socket's timeouts; nil when none is left.
local function arm(sock, deadline)
  local left = deadline - ngx.now()
  if left <= 0 then return nil end
  sock:settimeout(left * 1000)
  return true
end

-- Reads the status line and header block (skipping 1xx interim answers).
local function read_head(self, sock)
  local status, minor, headers
  repeat
    local line, err = sock:receive("*l")
    if not line then return nil, read_failure(self, err, "the status line") end
    if sub(line, 1, 7) ~= "HTTP/1." or byte(line, 9) ~= 32 then
      return nil, failure("protocol", ("%s answered something that is not HTTP/1.x: %q"):format(self.label,
        sub(line, 1, 60)), true)
    end
    minor = byte(line, 8) - 48
    status = tonumber(sub(line, 10, 12))
    if not status or status < 100 or status > 599 then
      return nil, failure("protocol", ("%s sent a bad status line: %q"):format(self.label, sub(line, 1, 60)), true)
    end
    headers = {}
    local size, count = 0, 0
    while true do
      local h, herr = sock:receive("*l") -- the line without its CR LF
      if not h then return nil, read_failure(self, herr, "the headers") end
      if h == "" then break end
      size, count = size + #h, count + 1
      if size > MAX_HEADER_BYTES or count > MAX_HEADER_LINES then
        return nil, failure("protocol", ("%s sent more than %d bytes or %d lines of headers"):format(self.label,
          MAX_HEADER_BYTES, MAX_HEADER_LINES), true)
      end
      -- Plain finds and byte tests: Lua patterns cost far more per header.
      local colon = find(h, ":", 1, true)
      if colon and colon > 1 then
        local name = lower(sub(h, 1, colon - 1))
        local first, last = colon + 1, #h
        local b = byte(h, first)
        while b == 32 or b == 9 do
          first = first + 1
          b = byte(h, first)
        end
        b = byte(h, last)
        while last >= first and (b == 32 or b == 9) do
          last = last - 1
          b = byte(h, last)
        end
        local value = sub(h, first, last)
        local prev = headers[name]
        headers[name] = prev and (prev .. ", " .. value) or value
      end
    end
  until status >= 200 or status == 101
  if status == 101 then
    return nil, failure("protocol", self.label .. " switched protocols (101), which this client never asks for", true)
  end
  return status, headers, minor
end

-- Reads a chunked body; returns the body, or nil, err.
local function read_chunked(self, sock, deadline)
  local parts, total, max = {}, 0, self.max_body
  while true do
    if not arm(sock, deadline) then return nil, read_failure(self, "timeout", "the body") end
    local line, err = sock:receive("*l")
    if not line then return nil, read_failure(self, err, "the body") end
    local size = tonumber(line:match("^%s*(%x+)%s*[;\r]?") or "", 16)
    if not size then
      return nil, failure("protocol", ("%s sent a bad chunk size line: %q"):format(self.label, sub(line, 1, 40)), true)
    end
    if size == 0 then
      for _ = 1, MAX_HEADER_LINES do -- trailers, up to the blank line
        local t, terr = sock:receive("*l")
        if not t then return nil, read_failure(self, terr, "the body") end
        if t == "" then return concat(parts) end
      end
      return nil, failure("protocol", self.label .. " sent too many trailer lines", true)
    end
    total = total + size
    if total > max then
      return nil, failure("too_large", ("response body is larger than max_body (%d bytes)"):format(max), true)
    end
    local data, derr = sock:receive(size)
    if not data then return nil, read_failure(self, derr, "the body") end
    parts[#parts + 1] = data
    local crlf, cerr = sock:receive(2)
    if crlf ~= "\r\n" then
      if not crlf then return nil, read_failure(self, cerr, "the body") end
      return nil, failure("protocol", self.label .. " sent a chunk longer than its size", true)
    end
  end
end

-- Reads a body delimited by the connection's end (no length, not chunked).
local function read_until_close(self, sock, deadline)
  local parts, total, max = {}, 0, self.max_body
  while true do
    if not arm(sock, deadline) then return nil, read_failure(self, "timeout", "the body") end
    local data, err = sock:receiveany(65536)
    if not data then
      if err == "closed" then return concat(parts) end
      return nil, read_failure(self, err, "the body")
    end
    total = total + #data
    if total > max then
      return nil, failure("too_large", ("response body is larger than max_body (%d bytes)"):format(max), true)
    end
    parts[#parts + 1] = data
  end
end

-- Sends one request on a connected socket and reads the whole answer.
-- Returns status, body, headers, keepalive; or nil, err.
local function exchange(self, sock, method, bytes, deadline)
  local ok, err = sock:send(bytes)
  if not ok then
    if err == "timeout" then
      return nil, failure("timeout", ("sending to %s took longer than %d ms"):format(self.label, self.timeout_ms), true)
    end
    return nil, failure("network", ("the connection to %s failed while sending: %s"):format(self.label, err), true)
  end
  local status, headers, minor = read_head(self, sock)
  if not status then return nil, headers end

  local connection = headers.connection
  connection = connection and lower(connection)
  local keepalive
  if minor >= 1 then
    keepalive = not (connection and find(connection, "close", 1, true))
  else
    keepalive = connection ~= nil and find(connection, "keep-alive", 1, true) ~= nil
  end

  local body
  local te = headers["transfer-encoding"]
  if method == "HEAD" or status == 204 or status == 304 then
    body = ""
  elseif te then
    if lower(te) ~= "chunked" then
      return nil, failure("protocol", ("%s sent an unsupported Transfer-Encoding: %s"):format(self.label, te), true)
    end
    if not arm(sock, deadline) then return nil, read_failure(self, "timeout", "the body") end
    body, err = read_chunked(self, sock, deadline)
    if not body then return nil, err end
  elseif headers["content-length"] then
    local text = headers["content-length"]
    local n = find(text, "^%d+$") and tonumber(text)
    if not n then
      return nil, failure("protocol", ("%s sent a bad Content-Length: %q"):format(self.label, sub(text, 1, 40)), true)
    end
    if n > self.max_body then
      return nil, failure("too_large", ("response body is larger than max_body (%d bytes)"):format(self.max_body), true)
    end
    if n == 0 then
      body = ""
    else
      if not arm(sock, deadline) then return nil, read_failure(self, "timeout", "the body") end
      local partial
      body, err, partial = sock:receive(n)
      if not body then
        if err == "closed" then
          err = ("closed after %d of %d body bytes"):format(partial and #partial or 0, n)
        end
        return nil, read_failure(self, err, "the body")
      end
    end
  else
    keepalive = false
    body, err = read_until_close(self, sock, deadline)
    if not body then return nil, err end
  end

  local encoding = headers["content-encoding"]
  if encoding and body ~= "" then
    encoding = lower(encoding)
    if encoding == "gzip" or encoding == "x-gzip" then
      if not self.zlib then
        return nil, failure("protocol", self.label .. " sent a gzip body this transport did not ask for", true)
      end
      local kind, message
      body, kind, message = self.zlib.inflate(body, self.max_body)
      if not body then return nil, failure(kind, message, true) end
    elseif encoding ~= "identity" then
      return nil, failure("protocol",
        ("%s sent an unsupported Content-Encoding: %s"):format(self.label, encoding), true)
    end
  end
  return status, body, headers, keepalive
end

-- Connects (or takes a pooled connection), with TLS on a new one.
local function connect(self, deadline)
  local sock = ngx.socket.tcp()
  local connect_ms = self.connect_ms
  local left = (deadline - ngx.now()) * 1000
  if left < 1 then left = 1 end
  if left < connect_ms then connect_ms = left end
  -- Sending and the wait for the status line get what is left of the total;
  -- the body's read is re-armed with what is left then (see exchange).
  sock:settimeouts(connect_ms, left, left)
  local ok, err = sock:connect(self.connect_host, self.port, self.connect_opts)
  local stats = self.stats
  if not ok then
    if err == "timeout" then
      return nil, failure("timeout", ("connecting to %s took longer than %d ms"):format(self.label, connect_ms), false)
    end
    if find(err, "no resolver defined", 1, true) then
      err = err .. " (add a resolver directive to nginx.conf, e.g. resolver 1.1.1.1;)"
    end
    return nil, failure("network", ("cannot connect to %s: %s"):format(self.label, err), false)
  end
  if sock:getreusedtimes() > 0 then
    stats.reused = stats.reused + 1
    return sock
  end
  stats.connections = stats.connections + 1
  if self.tls then
    -- ngx_lua 0.10.23 loses a verification failure when the handshake
    -- completes at once (lua-nginx-module PR 2506): asking for the session
    -- makes lua-resty-core check the result, and it raises (an assertion)
    -- instead of answering. Either way the socket is already unusable.
    local raised, done, herr = pcall(sock.sslhandshake, sock, nil, self.server_name, self.verify)
    if not raised then
      done, herr = nil, "certificate refused: an unknown CA or another host name (the Lua module drops"
        .. " the detail when the handshake completes at once)"
    end
    if not done then
      sock:close()
      if herr == "timeout" then
        return nil, failure("timeout", ("the TLS handshake with %s took longer than %d ms"):format(self.label,
          connect_ms), false)
      end
      local hint = ""
      if find(herr, "host mismatch", 1, true) then
        if find(self.server_name, "^[%d.]+$") or find(self.server_name, ":", 1, true) then
          hint = " (nginx matches the certificate's DNS names only, never its IP addresses: use a host name)"
        end
      elseif find(herr, "verify", 1, true) or find(herr, "certificate", 1, true) then
        hint = " (inside nginx the trusted CAs come from the lua_ssl_trusted_certificate directive"
          .. (self.ca_file and (", not from ca_file " .. self.ca_file) or "") .. ")"
      end
      return nil, failure("tls", ("TLS handshake with %s failed: %s%s"):format(self.label, herr, hint), false)
    end
  end
  return sock
end

-- The request itself, arguments already checked (body encoded).
local function send_request(self, method, path, body, headers)
  local perr = phase_error()
  if perr then return nil, perr end
  local deadline = ngx.now() + self.timeout_ms / 1000
  self.stats.requests = self.stats.requests + 1
  local sock, err = connect(self, deadline)
  if not sock then return nil, err end
  local status, rbody, rheaders, keepalive = exchange(self, sock, method, request_bytes(self, method, path, body,
    headers), deadline)
  if not status then
    -- A connection left mid-answer can never be reused.
    sock:close()
    return nil, rbody
  end
  if keepalive then
    -- Refused (e.g. bytes left unread): the connection must not linger.
    if not sock:setkeepalive(self.keepalive_ms) then sock:close() end
  else
    sock:close()
  end
  return status, rbody, rheaders
end

--- Same contract as `envoke.core` pool:request: status, body, headers for any
-- HTTP status, or nil, err. Yields while waiting; never blocks the worker.
-- @local
function Transport:request(method, path, body, headers)
  body = check_request(self, method, path, body, headers)
  return send_request(self, method, path, body, headers)
end

-- ------------------------------------------------------------------------
-- Non-blocking calls: one light thread per request
-- ------------------------------------------------------------------------

local function push_done(self, id, a, b, c)
  local tail = self.done_tail + 1
  self.done_tail = tail
  self.done[tail] = { id, a, b, c }
end

-- Wakes every coroutine waiting in perform.
local function wake(self)
  local sema = self.sema
  if sema then
    local waiting = -sema:count()
    if waiting > 0 then sema:post(waiting) end
  end
end

local function run_job(self, job, method, path, body, headers)
  local ok, status, rbody, rheaders = pcall(send_request, self, method, path, body, headers)
  if job.cancelled then return end
  job.finished = true
  self.owner[job.id] = nil
  self.running[job.id] = nil
  self.nrunning = self.nrunning - 1
  if not ok then
    status, rbody, rheaders = nil, failure("protocol", "internal error: " .. tostring(status), true), nil
  end
  push_done(self, job.id, status, rbody, rheaders)
  wake(self)
end

--- Starts a request on a light thread and returns its id at once.
-- In a phase without cosockets the request finishes at once with the phase error.
-- @local
function Transport:submit(method, path, body, headers)
  body = check_request(self, method, path, body, headers)
  self.next_id = self.next_id + 1
  local id = self.next_id
  local perr = phase_error()
  if perr then
    push_done(self, id, nil, perr)
    return id
  end
  local job = { id = id }
  self.running[id] = job
  self.nrunning = self.nrunning + 1
  if OWNED[ngx.get_phase()] then
    self.owner[id] = ngx.ctx
    job.owned = true
  end
  -- spawn runs the thread until its first yield: it may even finish here.
  local thread, err = ngx.thread.spawn(run_job, self, job, method, path, body, headers)
  if not thread then
    if not job.finished then
      self.running[id] = nil
      self.nrunning = self.nrunning - 1
      push_done(self, id, nil, failure("network", "could not start a light thread: " .. tostring(err), false))
    end
  elseif not job.finished then
    job.thread = thread
  end
  return id
end

-- Ends jobs whose light thread nginx aborted (their request called ngx.exit,
-- raised, or ended): nothing else would ever report them.
local function reap(self)
  if self.nrunning == 0 then return end
  local ctx = yieldable() and ngx.ctx or nil
  for id, job in pairs(self.running) do
    local owner = self.owner[id]
    local gone = job.owned and owner == nil -- its request ended and was collected
    if not gone and owner == ctx and job.thread then
      gone = coroutine.status(job.thread) == "dead"
    end
    if gone then
      job.cancelled = true
      self.owner[id] = nil
      self.running[id] = nil
      self.nrunning = self.nrunning - 1
      push_done(self, id, nil, failure("network",
        "the light thread running this request was aborted (its request ended or called ngx.exit)", true))
    end
  end
end

--- Waits (yielding, never blocking) up to timeout_ms until a request finishes.
-- 0 never waits and never yields: requests progress whenever the caller
-- yields (any cosocket call, ngx.sleep, or perform with a timeout).
-- @treturn integer how many requests are still running
-- @local
function Transport:perform(timeout_ms)
  if self.closed then error("envoke.transport.ngx: attempt to use a closed transport", 2) end
  timeout_ms = timeout_ms or 0
  if type(timeout_ms) ~= "number" or timeout_ms < 0 or timeout_ms > 86400000 then
    error("envoke.transport.ngx: perform: timeout must be 0 to 86400000 milliseconds", 2)
  end
  reap(self)
  if self.done_tail >= self.done_head or self.nrunning == 0 or timeout_ms < 1 then return self.nrunning end
  if not yieldable() then
    -- Waiting would need a yield; spinning on it would hang the worker.
    error(("envoke.transport.ngx: cannot wait for requests in the '%s' phase (nginx cannot yield there)")
      :format(ngx.get_phase()), 2)
  end
  local sema = self.sema
  if not sema then
    sema = require("ngx.semaphore").new()
    self.sema = sema
  end
  local deadline = ngx.now() + timeout_ms / 1000
  repeat
    local left = deadline - ngx.now()
    if left < 0.001 then break end
    sema:wait(left)
    reap(self)
  until self.done_tail >= self.done_head or self.nrunning == 0
  return self.nrunning
end

--- The next finished request: id, status, body, headers | id, nil, err | nil.
-- @local
function Transport:finished()
  local head = self.done_head
  if head > self.done_tail then return nil end
  local r = self.done[head]
  self.done[head] = nil
  self.done_head = head + 1
  return r[1], r[2], r[3], r[4]
end

--- Drops a request: a running one's light thread is killed (when this
-- coroutine started it; otherwise it runs on and its result is discarded).
-- @treturn boolean true when it was pending
-- @local
function Transport:cancel(id)
  local job = self.running[id]
  if job then
    job.cancelled = true
    self.running[id] = nil
    self.owner[id] = nil
    self.nrunning = self.nrunning - 1
    -- Killing aborts its socket operation, and nginx closes that connection.
    if job.thread and yieldable() then ngx.thread.kill(job.thread) end
    return true
  end
  for i = self.done_head, self.done_tail do
    local r = self.done[i]
    if r and r[1] == id then
      for j = i, self.done_tail - 1 do self.done[j] = self.done[j + 1] end
      self.done[self.done_tail] = nil
      self.done_tail = self.done_tail - 1
      return true
    end
  end
  return false
end

--- How many submitted requests have not been collected.
-- @local
function Transport:pending()
  return self.nrunning + (self.done_tail - self.done_head + 1)
end

--- Cancels what runs and drops what waits (idempotent). Later calls raise.
-- @local
function Transport:close()
  if self.closed then return end
  for id in pairs(self.running) do self:cancel(id) end
  self.done, self.done_head, self.done_tail = {}, 1, 0
  self.closed = true
end

return M
