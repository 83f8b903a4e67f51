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
local contract = require "envoke.transport.contract"
local http1 = require "envoke.http1"
local jobs = require "envoke.transport.jobs"

local M = {}

local Transport = {}
Transport.__index = Transport

-- Per transport, what carries the credential (weak keys: it goes with its transport).
local private = setmetatable({}, { __mode = "k" })
M.Transport = Transport

local NAME = "envoke.transport.ngx"

local find, concat = string.find, table.concat
local tostring, type, pairs, pcall = tostring, type, pairs, pcall

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

local failure = http1.failure

--- Waits `ms` milliseconds by yielding (retries, the rate limit). A plain
-- function, as the client calls it. Where nothing can yield it returns at
-- once: the call that follows then fails with the phase error.
-- @local
function Transport.sleep(ms)
  if ms > 0 and yieldable() then ngx.sleep(ms / 1000) end
end

-- ------------------------------------------------------------------------
-- Construction
-- ------------------------------------------------------------------------

local function ms(seconds) return math.floor(seconds * 1000 + 0.5) end

-- Unguessable pool names: the credentials' digest is salted per process, so a
-- pool name seen in a debug log reveals nothing about the key.
local salt

-- One pool per base URL, TLS settings and credentials: accounts never share one.
local function pool_name(self, s, scheme)
  local identity
  if s.token then
    identity = "bearer\0" .. s.token
  elseif s.api_id then
    identity = "basic\0" .. s.api_id .. "\0" .. (s.api_key or "")
  end
  salt = salt or core.random_bytes(16)
  return concat({ "envoke", scheme, self.connect_host, self.port, self.server_name,
                  self.verify and "verify" or "noverify", tostring(self.ca_file or ""),
                  identity and ngx.md5(salt .. identity) or "anonymous" }, "|")
end

--- A transport for the client's settings (see `envoke.new`).
function M.new(s)
  if type(ngx) ~= "table" or not ngx.socket then
    error("envoke.transport.ngx: needs nginx with the Lua module (OpenResty); use transport = 'curl' elsewhere", 3)
  end
  s = s or {}
  if s.proxy and s.proxy ~= "" then
    error("envoke.transport.ngx: option 'proxy' is not supported inside nginx (cosockets connect directly)", 3)
  end
  local c = contract.settings(NAME, s, ngx.encode_base64)
  local u = c.url
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
  self.connect_ms = c.connect_ms
  self.timeout_ms = c.timeout_ms
  self.max_body = c.max_body
  self.keepalive_ms = ms(s.keepalive_timeout or 60)
  self.now = ngx.now

  self.pool_name = pool_name(self, s, u.scheme)
  self.connect_opts = { pool = self.pool_name, pool_size = s.pool_size or 32 }

  self.inflate = require("envoke.zlib").inflater()
  self.user_agent = c.user_agent
  -- They carry the credential: kept out of any table a caller can walk.
  private[self] = http1.head{
    { "Host", u.authority }, { "User-Agent", c.user_agent }, { "Authorization", c.auth },
    { "Accept", "application/json" }, { "Accept-Encoding", self.inflate and "gzip" or nil },
  }
  self.stats = { requests = 0, connections = 0, reused = 0 }
  self.encode = core.json_encode
  jobs.init(self)
  self.owner = setmetatable({}, { __mode = "v" }) -- id -> the request ctx that runs it
  return self
end

-- ------------------------------------------------------------------------
-- One exchange
-- ------------------------------------------------------------------------

-- The TLS handshake on a new connection: true, or nil, err (the socket closed).
local function handshake(self, sock, connect_ms)
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
  return true
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
    ok, err = handshake(self, sock, connect_ms)
    if not ok then return nil, err end
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
  local bytes = http1.request(method, self.prefix .. path, private[self], body, headers)
  local status, rbody, rheaders, keepalive = http1.exchange(self, sock, method, bytes, deadline)
  if not status then
    -- A connection left mid-answer can never be reused.
    sock:close()
    return nil, rbody
  end
  if keepalive and not contract.closes(headers) then
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
  body = contract.check_request(NAME, self.closed, self.encode, method, path, body, headers)
  return send_request(self, method, path, body, headers)
end

-- ------------------------------------------------------------------------
-- Non-blocking calls: one light thread per request
-- ------------------------------------------------------------------------

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
  jobs.forget(self, job)
  if not ok then
    status, rbody, rheaders = nil, failure("protocol", "internal error: " .. tostring(status), true), nil
  end
  jobs.push(self, job.id, status, rbody, rheaders)
  wake(self)
end

--- Starts a request on a light thread and returns its id at once.
-- In a phase without cosockets the request finishes at once with the phase error.
-- @local
function Transport:submit(method, path, body, headers)
  body = contract.check_request(NAME, self.closed, self.encode, method, path, body, headers)
  local perr = phase_error()
  if perr then
    local id = jobs.next_id(self)
    jobs.push(self, id, nil, perr)
    return id
  end
  local job = jobs.start(self)
  local id = job.id
  if OWNED[ngx.get_phase()] then
    self.owner[id] = ngx.ctx
    job.owned = true
  end
  -- spawn runs the thread until its first yield: it may even finish here.
  local thread, err = ngx.thread.spawn(run_job, self, job, method, path, body, headers)
  if not thread then
    if not job.finished then
      jobs.forget(self, job)
      jobs.push(self, id, nil, failure("network", "could not start a light thread: " .. tostring(err), false))
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
      jobs.forget(self, job)
      jobs.push(self, id, nil, failure("network",
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
  if jobs.any_done(self) or self.nrunning == 0 or timeout_ms < 1 then return self.nrunning end
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
  until jobs.any_done(self) or self.nrunning == 0
  return self.nrunning
end

--- The next finished request: id, status, body, headers | id, nil, err | nil.
-- @local
function Transport:finished() return jobs.finished(self) end

--- Drops a request: a running one's light thread is killed (when this
-- coroutine started it; otherwise it runs on and its result is discarded).
-- @treturn boolean true when it was pending
-- @local
function Transport:cancel(id)
  local job = self.running[id]
  if job then
    job.cancelled = true
    jobs.forget(self, job)
    self.owner[id] = nil
    -- Killing aborts its socket operation, and nginx closes that connection.
    if job.thread and yieldable() then ngx.thread.kill(job.thread) end
    return true
  end
  return jobs.drop_done(self, id)
end

--- How many submitted requests have not been collected.
-- @local
function Transport:pending() return jobs.pending(self) end

--- Cancels what runs and drops what waits (idempotent). Later calls raise.
-- @local
function Transport:close() jobs.close(self) end

return M
