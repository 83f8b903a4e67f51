--- The transport inside HAProxy (2.6, Lua 5.3): HTTP/1.1 (`envoke.http1`)
-- over HAProxy's Lua sockets (`core.tcp()`), so a call yields to HAProxy's
-- scheduler instead of holding its event loop, and with it every frontend.
--
-- Same contract as the curl transport (`request`, `submit`, `perform`,
-- `finished`, `cancel`, `pending`, `close`, and `sleep`), chosen by the client
-- by default when HAProxy's `core` global exists. What differs inside HAProxy:
--
-- * Calls work in services, actions and tasks (HAProxy's run time). In the
--   body of a `lua-load`ed file and in `core.register_init` functions
--   HAProxy has no sockets: every call returns `nil, err` with kind
--   `unavailable` at once (make the client there, call it later). Sample
--   fetches and converters cannot yield at all: never call it from one.
-- * HAProxy's sockets resolve no host names at run time and `connect_ssl`
--   verifies nothing (no CA, no host name, no SNI). So the base URL's host
--   must be an IP address or `localhost`, and an `https` base URL needs
--   either `verify = false` (encrypted, unauthenticated) or option `via`:
--   the address of an HAProxy listener (`"127.0.0.1:8443"`, `"abns@envoke"`)
--   whose `server` line carries the bytes to the API with `ssl verify
--   required ca-file … sni …` and resolves its name. With `via` the
--   transport speaks plain HTTP to that address and HAProxy does the TLS.
--   Otherwise such calls fail at once (kinds `unavailable`, `tls`), saying so.
-- * Idle connections are kept per base URL and credentials and reused by
--   later calls, also by other service calls and other clients, when HAProxy
--   runs one thread or one Lua state per thread (`lua-load-per-thread`);
--   with a Lua state shared by several threads a socket must not move
--   between threads, so each call then has a connection of its own.
-- * `submit` runs each request as an HAProxy task (`core.register_task`);
--   `perform(ms)` sleeps (`core.msleep`, 1 ms steps) until one finishes.
--   `perform(0)` never yields: tasks progress while the caller yields.
-- * No gzip (no inflater without LuaJIT's FFI), no proxy.
--
-- Options of `new` beyond the client's: `via`, `pool_size` (32 idle
-- connections at most per pool), `keepalive_timeout` (60 seconds), for a
-- transport made by hand and given as `transport = t`.
-- @module envoke.transport.haproxy

local contract = require "envoke.transport.contract"
local http1 = require "envoke.http1"
local jobs = require "envoke.transport.jobs"

local M = {}

local Transport = {}
Transport.__index = Transport
M.Transport = Transport

local NAME = "envoke.transport.haproxy"

local floor, concat, find = math.floor, table.concat, string.find
local type, tostring, pcall, setmetatable = type, tostring, pcall, setmetatable

local failure = http1.failure

-- Per transport, what carries the credential (weak keys: it goes with its transport).
local private = setmetatable({}, { __mode = "k" })

-- HAProxy's `core`, when this runs inside HAProxy.
local hap = rawget(_G, "core")
if type(hap) ~= "table" or not hap.tcp then hap = nil end

--- Whether HAProxy's `core` offers what this transport needs.
-- @local
function M.available()
  return hap ~= nil and type(hap.register_task) == "function" and type(hap.msleep) == "function"
end

-- ------------------------------------------------------------------------
-- Run time: HAProxy has sockets only once its scheduler runs. A socket made
-- in an init function is harmful besides (HAProxy 2.6.12 hangs when it is
-- collected), so this never makes one before then.
-- ------------------------------------------------------------------------

local running = false -- set by a task: tasks run only once the scheduler does
if M.available() then pcall(hap.register_task, function() running = true end) end

-- True at run time. Loaded at run time itself, the task above has not run
-- yet: one yield lets it (in the body and init contexts a yield returns at once).
local function at_run_time()
  if not running and hap then pcall(hap.yield) end
  return running
end

local function run_time_error()
  return { kind = "unavailable", sent = false, retryable = false,
           message = "HAProxy has no sockets before its scheduler runs (the body of a lua-load'ed file, "
             .. "core.register_init): make the client there, and the calls from a service, an action or a task" }
end

local function now()
  local t = hap.now()
  return t.sec + t.usec / 1e6
end

--- Waits `ms` milliseconds by yielding to HAProxy (retries, the rate limit).
-- A plain function, as the client calls it; before run time it returns at once.
-- @local
function Transport.sleep(ms)
  if ms >= 1 and at_run_time() then hap.msleep(floor(ms)) end
end

-- ------------------------------------------------------------------------
-- A cosocket-like socket over core.tcp() (the interface envoke.http1 reads)
-- ------------------------------------------------------------------------

local Conn = {}
Conn.__index = Conn

-- HAProxy reports a timeout and a close alike ("connection closed."): the clock tells them apart.
local function why(self)
  if self.expires and now() >= self.expires - 0.002 then return "timeout" end
  return "closed"
end

-- HAProxy raises on a socket whose stream it has already released (the
-- server closed it): that socket is closed, whatever the call.
local function call(self, method, ...)
  local ok, a = pcall(method, self.sock, ...)
  if not ok then
    self.eof = true
    return nil
  end
  return a
end

-- Sets the time left for what follows; false when the socket is dead.
function Conn:settimeout(ms)
  self.expires = now() + ms / 1000
  if self.eof then return false end
  local ok = pcall(self.sock.settimeout, self.sock, ms / 1000)
  if not ok then self.eof = true end
  return ok
end

function Conn:send(data)
  if type(data) == "table" then data = concat(data) end
  local n = not self.eof and call(self, self.sock.send, data)
  if not n then return nil, why(self) end
  return n
end

-- HAProxy answers a short read at the end of the stream as data: it is the partial data.
function Conn:receive(pattern)
  if self.eof then return nil, "closed", "" end
  local data = call(self, self.sock.receive, pattern)
  if not data then return nil, why(self) end
  if type(pattern) == "number" and #data < pattern then
    self.eof = true
    return nil, why(self), data
  end
  return data
end

-- Up to max bytes; HAProxy waits for all of them or the end of the stream.
function Conn:receiveany(max)
  if self.eof then return nil, "closed" end
  local data = call(self, self.sock.receive, max)
  if not data then return nil, why(self) end
  if #data < max then self.eof = true end
  if data == "" then return nil, "closed" end
  return data
end

function Conn:close()
  self.eof = true
  pcall(self.sock.close, self.sock)
end

-- ------------------------------------------------------------------------
-- Keep-alive pools: idle connections per base URL, route and credentials
-- ------------------------------------------------------------------------

-- pool key -> list of { conn, idle_since }. Local: its keys hold credentials.
local pools = {}

-- Whether a socket may serve another call: not when several threads share this Lua state.
local function reusable()
  if hap.thread and hap.thread > 0 then return true end
  local ok, info = pcall(hap.get_info)
  return ok and tonumber(info.Nbthread) == 1
end

local function take_idle(self)
  local idle = pools[private[self].pool]
  while idle and #idle > 0 do
    local entry = idle[#idle]
    idle[#idle] = nil
    -- A socket HAProxy has released refuses even a timeout: skip it.
    if now() - entry[2] < self.keepalive_s and entry[1]:settimeout(self.timeout_ms) then return entry[1] end
    entry[1]:close()
  end
end

local function put_idle(self, conn)
  local key = private[self].pool
  local idle = pools[key]
  if not idle then
    idle = {}
    pools[key] = idle
  end
  if #idle >= self.pool_size or not reusable() then return conn:close() end
  conn.expires = nil
  idle[#idle + 1] = { conn, now() }
end

-- ------------------------------------------------------------------------
-- Construction
-- ------------------------------------------------------------------------

-- Where to connect: the address HAProxy's sockets take, or nil and why not.
local function route(u, s)
  if s.via then return s.via, nil end
  local bare = u.host:gsub("^%[(.*)%]$", "%1")
  if bare == "localhost" or bare:sub(-10) == ".localhost" then return "127.0.0.1", u.port end
  if find(bare, "^%d+%.%d+%.%d+%.%d+$") then return bare, u.port end
  if find(bare, ":", 1, true) then return "ipv6@" .. bare, u.port end
  return nil, ("HAProxy's Lua sockets resolve no host names at run time (%s): give option 'via', the address"
    .. " of an HAProxy listener whose server line reaches the API, or an IP address"):format(bare)
end

-- Why TLS cannot be had as asked, or nil.
local function tls_refusal(tls, verify, via)
  if not tls or via or not verify then return nil end
  return "HAProxy's Lua sockets (connect_ssl) verify no certificate: no CA, no host name, no SNI. Give option"
    .. " 'via', the address of an HAProxy listener whose server line has 'ssl verify required ca-file ... sni"
    .. " ...', or verify = false to accept an unauthenticated connection"
end

local function pool_key(self, s)
  local identity = s.token and ("bearer\0" .. s.token)
    or s.api_id and ("basic\0" .. s.api_id .. "\0" .. (s.api_key or "")) or "anonymous"
  return concat({ self.label, tostring(self.address), tostring(self.port), self.tls_direct and "tls" or "plain",
                  identity }, "|")
end

--- A transport for the client's settings (see `envoke.new`).
function M.new(s)
  if not M.available() then
    error(NAME .. ": needs HAProxy's Lua (core.tcp); use transport = 'curl' elsewhere", 3)
  end
  s = s or {}
  if s.proxy and s.proxy ~= "" then
    error(NAME .. ": option 'proxy' is not supported inside HAProxy (its sockets connect directly)", 3)
  end
  if s.via ~= nil and (type(s.via) ~= "string" or s.via == "") then
    error(NAME .. ": option 'via' must be an address string, e.g. '127.0.0.1:8443' or 'abns@envoke'", 3)
  end
  local c = contract.settings(NAME, s, contract.base64_encode)
  local u = c.url
  local self = setmetatable({}, Transport)
  self.label = u.scheme .. "://" .. u.authority
  self.prefix = u.prefix
  self.tls = u.scheme == "https"
  self.verify = s.verify ~= false
  self.tls_direct = self.tls and not s.via
  local address, port = route(u, s)
  if not address then
    self.refusal = { kind = "unavailable", message = port }
  else
    self.address, self.port = address, port
    local why_not = tls_refusal(self.tls, self.verify, s.via)
    if why_not then self.refusal = { kind = "tls", message = why_not } end
  end
  self.connect_ms, self.timeout_ms, self.max_body = c.connect_ms, c.timeout_ms, c.max_body
  self.keepalive_s = s.keepalive_timeout or 60
  self.pool_size = s.pool_size or 32
  self.user_agent = c.user_agent
  self.now = now
  self.encode = require("envoke.core").json_encode
  self.stats = { requests = 0, connections = 0, reused = 0 }
  -- They carry the credential: kept out of any table a caller can walk.
  private[self] = {
    head = http1.head{ { "Host", u.authority }, { "User-Agent", c.user_agent }, { "Authorization", c.auth },
                       { "Accept", "application/json" } },
    pool = pool_key(self, s),
  }
  jobs.init(self)
  return self
end

-- ------------------------------------------------------------------------
-- One exchange
-- ------------------------------------------------------------------------

-- A new connection (TLS when asked for), or nil, err.
local function connect_new(self, deadline)
  local made, sock = pcall(hap.tcp)
  if not made then return nil, run_time_error() end
  local connect_ms = floor(math.min(self.connect_ms, math.max(1, (deadline - now()) * 1000)))
  local conn = setmetatable({ sock = sock }, Conn)
  conn:settimeout(connect_ms)
  local method = self.tls_direct and sock.connect_ssl or sock.connect
  local ok, done, err
  if self.port then
    ok, done, err = pcall(method, sock, self.address, self.port)
  else
    ok, done, err = pcall(method, sock, self.address)
  end
  if ok and done then
    self.stats.connections = self.stats.connections + 1
    return conn
  end
  conn:close()
  if not ok then err = done end
  if why(conn) == "timeout" then
    return nil, failure("timeout", ("connecting to %s took longer than %d ms"):format(self.label, connect_ms), false)
  end
  return nil, failure("network", ("cannot connect to %s: %s"):format(self.label, tostring(err or "refused")), false)
end

local function connect(self, deadline)
  local conn = take_idle(self)
  if conn then
    self.stats.reused = self.stats.reused + 1
    return conn
  end
  return connect_new(self, deadline)
end

-- The request itself, arguments already checked (body encoded).
local function send_request(self, method, path, body, headers)
  if not at_run_time() then return nil, run_time_error() end
  local refusal = self.refusal
  if refusal then return nil, { kind = refusal.kind, sent = false, retryable = false, message = refusal.message } end
  local deadline = now() + self.timeout_ms / 1000
  self.stats.requests = self.stats.requests + 1
  local conn, err = connect(self, deadline)
  if not conn then return nil, err end
  conn:settimeout(math.max(1, (deadline - now()) * 1000))
  local bytes = http1.request(method, self.prefix .. path, private[self].head, body, headers)
  local status, rbody, rheaders, keepalive = http1.exchange(self, conn, method, bytes, deadline)
  if status and keepalive and not contract.closes(headers) and not self.closed then
    put_idle(self, conn)
  else
    -- A connection left mid-answer can never be reused.
    conn:close()
  end
  if not status then return nil, rbody end
  return status, rbody, rheaders
end

--- Same contract as `envoke.core` pool:request: status, body, headers for any
-- HTTP status, or nil, err. Yields to HAProxy while waiting.
-- @local
function Transport:request(method, path, body, headers)
  body = contract.check_request(NAME, self.closed, self.encode, method, path, body, headers)
  return send_request(self, method, path, body, headers)
end

-- ------------------------------------------------------------------------
-- Non-blocking calls: one HAProxy task per request
-- ------------------------------------------------------------------------

local function run_job(self, job, method, path, body, headers)
  if job.cancelled then return end
  job.begun = true
  local ok, status, rbody, rheaders = pcall(send_request, self, method, path, body, headers)
  if job.cancelled then return end
  jobs.forget(self, job)
  if not ok then
    status, rbody, rheaders = nil, failure("protocol", "internal error: " .. tostring(status), true), nil
  end
  jobs.push(self, job.id, status, rbody, rheaders)
end

--- Starts a request as an HAProxy task and returns its id at once. Before
-- run time the request finishes at once with the `unavailable` error.
-- @local
function Transport:submit(method, path, body, headers)
  body = contract.check_request(NAME, self.closed, self.encode, method, path, body, headers)
  if not at_run_time() then
    local id = jobs.next_id(self)
    jobs.push(self, id, nil, run_time_error())
    return id
  end
  local job = jobs.start(self)
  local ok, err = pcall(hap.register_task, function() run_job(self, job, method, path, body, headers) end)
  if not ok then
    jobs.forget(self, job)
    jobs.push(self, job.id, nil, failure("network", "could not start an HAProxy task: " .. tostring(err), false))
  end
  return job.id
end

--- Waits (sleeping in HAProxy, never blocking it) up to timeout_ms until a
-- request finishes. 0 never waits and never yields.
-- @treturn integer how many requests are still running
-- @local
function Transport:perform(timeout_ms)
  if self.closed then error(NAME .. ": attempt to use a closed transport", 2) end
  timeout_ms = timeout_ms or 0
  if type(timeout_ms) ~= "number" or timeout_ms < 0 or timeout_ms > 86400000 then
    error(NAME .. ": perform: timeout must be 0 to 86400000 milliseconds", 2)
  end
  if jobs.any_done(self) or self.nrunning == 0 or timeout_ms < 1 then return self.nrunning end
  if not at_run_time() then
    error(NAME .. ": cannot wait for requests before HAProxy's scheduler runs (body or init context)", 2)
  end
  local deadline = now() + timeout_ms / 1000
  repeat
    hap.msleep(1)
  until jobs.any_done(self) or self.nrunning == 0 or now() >= deadline
  return self.nrunning
end

--- The next finished request: id, status, body, headers | id, nil, err | nil.
-- @local
function Transport:finished() return jobs.finished(self) end

--- Drops a request. A running task cannot be stopped: its result is
-- discarded. The second value says whether it may have been sent.
-- @treturn boolean true when it was pending
-- @local
function Transport:cancel(id)
  local job = self.running[id]
  if job then
    job.cancelled = true
    jobs.forget(self, job)
    return true, job.begun == true
  end
  return jobs.drop_done(self, id)
end

--- How many submitted requests have not been collected.
-- @local
function Transport:pending() return jobs.pending(self) end

--- Cancels what runs and drops what waits (idempotent). Later calls raise.
-- Idle connections stay in their pool for later clients.
-- @local
function Transport:close() jobs.close(self) end

return M
