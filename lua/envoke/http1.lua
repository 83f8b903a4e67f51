--- An HTTP/1.1 client codec over any socket object with the cosocket
-- interface (nginx's `ngx.socket.tcp`, or a host's adapter to it):
-- `send(data)`, `receive("*l")` (a line without its CR LF), `receive(n)`,
-- `receiveany(max)`, `settimeout(ms)`, failing with `nil, "timeout"` or
-- `nil, "closed"` (and, for `receive(n)`, the partial data).
--
-- It writes requests and reads answers: the status line, headers,
-- Content-Length, chunked and close-delimited bodies, gzip through the
-- transport's `inflate`, the body cap. It knows nothing of connecting,
-- pools, TLS or the host's scheduling: the transports (`envoke.transport.ngx`,
-- `envoke.transport.haproxy`) do that, as lua-resty-http keeps its connect
-- step apart from its request and response code.
--
-- Reading functions take `t`, the transport: `t.label` ("http://host:port"
-- for messages), `t.timeout_ms`, `t.max_body`, `t.now()` (seconds) and
-- `t.inflate(data, max)` (nil when gzip is not asked for).
-- @module envoke.http1
local http1 = {}

local MAX_HEADER_BYTES = 64 * 1024
local MAX_HEADER_LINES = 200

local byte, sub, find, lower, concat = string.byte, string.sub, string.find, string.lower, table.concat
local tostring, tonumber, pairs, next = tostring, tonumber, pairs, next

local function failure(kind, message, sent)
  return { kind = kind, message = message, sent = sent, retryable = kind == "network" or kind == "timeout" }
end
http1.failure = failure

-- ------------------------------------------------------------------------
-- Writing
-- ------------------------------------------------------------------------

--- The fixed header lines of every request, from `{ { name, value }, ... }`
-- in order (nil values are left out): `{ block = "Name: value\r\n...",
-- lines = { [lower name] = "Name: value\r\n" } }`. It may hold the
-- credential: the transport keeps it out of any table a caller can walk.
-- @local
function http1.head(fields)
  local block, lines = {}, {}
  for _, f in ipairs(fields) do
    if f[2] then
      local line = f[1] .. ": " .. f[2] .. "\r\n"
      block[#block + 1] = line
      lines[lower(f[1])] = line
    end
  end
  return { block = concat(block), lines = lines }
end

--- A request's bytes: one string on the usual path (no extra headers), else
-- a table of strings. `target` is the path with its query; `body` is text.
-- The caller's headers replace fixed ones of the same name (any case).
-- @local
function http1.request(method, target, head, body, headers)
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
    return method .. " " .. target .. " HTTP/1.1\r\n" .. head.block .. framing .. (body or "")
  end
  local out = { method, " ", target, " HTTP/1.1\r\n" }
  local given = {}
  for k in pairs(headers) do given[lower(k)] = true end
  for k, line in pairs(head.lines) do
    if not given[k] then out[#out + 1] = line end
  end
  for k, v in pairs(headers) do out[#out + 1] = k .. ": " .. tostring(v) .. "\r\n" end
  if given["content-type"] then framing = framing:gsub("^Content%-Type: application/json\r\n", "") end
  out[#out + 1] = framing
  out[#out + 1] = body
  return out
end

-- ------------------------------------------------------------------------
-- Reading
-- ------------------------------------------------------------------------

-- What a failed read means: a timeout, or a connection cut before the answer was whole.
local function read_failure(t, err, what)
  if err == "timeout" then
    return failure("timeout",
      ("no complete answer from %s within %d ms (%s)"):format(t.label, t.timeout_ms, what), true)
  end
  return failure("network",
    ("the connection to %s failed while reading %s: %s"):format(t.label, what, tostring(err)), true)
end

local function too_large(max)
  return failure("too_large", ("response body is larger than max_body (%d bytes)"):format(max), true)
end

-- Seconds left before the deadline, set as the socket's timeout; nil when none is left.
local function arm(t, sock, deadline)
  local left = deadline - t.now()
  if left <= 0 then return nil end
  sock:settimeout(left * 1000)
  return true
end

-- One header line into headers (names lower-cased, repeats joined). Plain
-- finds and byte tests: Lua patterns cost far more per header.
local function add_header(headers, h)
  local colon = find(h, ":", 1, true)
  if not colon or colon == 1 then return end
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

-- The header block up to its blank line; returns the headers, or nil, err.
local function read_headers(t, sock)
  local headers, size, count = {}, 0, 0
  while true do
    local h, err = sock:receive("*l") -- the line without its CR LF
    if not h then return nil, read_failure(t, err, "the headers") end
    if h == "" then return headers end
    size, count = size + #h, count + 1
    if size > MAX_HEADER_BYTES or count > MAX_HEADER_LINES then
      return nil, failure("protocol", ("%s sent more than %d bytes or %d lines of headers"):format(t.label,
        MAX_HEADER_BYTES, MAX_HEADER_LINES), true)
    end
    add_header(headers, h)
  end
end

-- The status line: status and minor version, or nil, err.
local function read_status(t, sock)
  local line, err = sock:receive("*l")
  if not line then return nil, read_failure(t, err, "the status line") end
  if sub(line, 1, 7) ~= "HTTP/1." or byte(line, 9) ~= 32 then
    return nil, failure("protocol", ("%s answered something that is not HTTP/1.x: %q"):format(t.label,
      sub(line, 1, 60)), true)
  end
  local status = tonumber(sub(line, 10, 12))
  if not status or status < 100 or status > 599 then
    return nil, failure("protocol", ("%s sent a bad status line: %q"):format(t.label, sub(line, 1, 60)), true)
  end
  return status, byte(line, 8) - 48
end

--- Reads the status line and header block, skipping 1xx interim answers.
-- @return status, headers, minor version; or nil, err
-- @local
function http1.read_head(t, sock)
  local status, minor, headers, err
  repeat
    status, minor = read_status(t, sock)
    if not status then return nil, minor end
    headers, err = read_headers(t, sock)
    if not headers then return nil, err end
  until status >= 200 or status == 101
  if status == 101 then
    return nil, failure("protocol", t.label .. " switched protocols (101), which this client never asks for", true)
  end
  return status, headers, minor
end

-- The end of a chunked body: trailers, up to the blank line.
local function read_trailers(t, sock)
  for _ = 1, MAX_HEADER_LINES do
    local line, err = sock:receive("*l")
    if not line then return nil, read_failure(t, err, "the body") end
    if line == "" then return true end
  end
  return nil, failure("protocol", t.label .. " sent too many trailer lines", true)
end

-- Reads a chunked body; returns the body, or nil, err.
local function read_chunked(t, sock, deadline)
  local parts, total, max = {}, 0, t.max_body
  while true do
    if not arm(t, sock, deadline) then return nil, read_failure(t, "timeout", "the body") end
    local line, err = sock:receive("*l")
    if not line then return nil, read_failure(t, err, "the body") end
    local size = tonumber(line:match("^%s*(%x+)%s*[;\r]?") or "", 16)
    if not size then
      return nil, failure("protocol", ("%s sent a bad chunk size line: %q"):format(t.label, sub(line, 1, 40)), true)
    end
    if size == 0 then
      local ok, terr = read_trailers(t, sock)
      if not ok then return nil, terr end
      return concat(parts)
    end
    total = total + size
    if total > max then return nil, too_large(max) end
    local data, derr = sock:receive(size)
    if not data then return nil, read_failure(t, derr, "the body") end
    parts[#parts + 1] = data
    local crlf, cerr = sock:receive(2)
    if crlf ~= "\r\n" then
      if not crlf then return nil, read_failure(t, cerr, "the body") end
      return nil, failure("protocol", t.label .. " sent a chunk longer than its size", true)
    end
  end
end

-- Reads a body delimited by the connection's end (no length, not chunked).
local function read_until_close(t, sock, deadline)
  local parts, total, max = {}, 0, t.max_body
  while true do
    if not arm(t, sock, deadline) then return nil, read_failure(t, "timeout", "the body") end
    local data, err = sock:receiveany(65536)
    if not data then
      if err == "closed" then return concat(parts) end
      return nil, read_failure(t, err, "the body")
    end
    total = total + #data
    if total > max then return nil, too_large(max) end
    parts[#parts + 1] = data
  end
end

-- Reads a body of Content-Length bytes.
local function read_sized(t, sock, text, deadline)
  local n = find(text, "^%d+$") and tonumber(text)
  if not n then
    return nil, failure("protocol", ("%s sent a bad Content-Length: %q"):format(t.label, sub(text, 1, 40)), true)
  end
  if n > t.max_body then return nil, too_large(t.max_body) end
  if n == 0 then return "" end
  if not arm(t, sock, deadline) then return nil, read_failure(t, "timeout", "the body") end
  local body, err, partial = sock:receive(n)
  if not body then
    if err == "closed" then err = ("closed after %d of %d body bytes"):format(partial and #partial or 0, n) end
    return nil, read_failure(t, err, "the body")
  end
  return body
end

-- Whether the connection may carry another request after this answer.
local function keeps_alive(headers, minor)
  local connection = headers.connection
  connection = connection and lower(connection)
  if minor >= 1 then return not (connection and find(connection, "close", 1, true)) end
  return connection ~= nil and find(connection, "keep-alive", 1, true) ~= nil
end

-- Reads the body the head announces: body, keepalive; or nil, err.
local function read_body(t, sock, method, status, headers, deadline)
  local te = headers["transfer-encoding"]
  if method == "HEAD" or status == 204 or status == 304 then return "", true end
  if te then
    if lower(te) ~= "chunked" then
      return nil, failure("protocol", ("%s sent an unsupported Transfer-Encoding: %s"):format(t.label, te), true)
    end
    local body, err = read_chunked(t, sock, deadline)
    return body, err or true
  end
  if headers["content-length"] then
    local body, err = read_sized(t, sock, headers["content-length"], deadline)
    return body, err or true
  end
  local body, err = read_until_close(t, sock, deadline)
  return body, err or false
end

-- Undoes the Content-Encoding: the body, or nil, err.
local function decode(t, headers, body)
  local encoding = headers["content-encoding"]
  if not encoding or body == "" then return body end
  encoding = lower(encoding)
  if encoding == "gzip" or encoding == "x-gzip" then
    if not t.inflate then
      return nil, failure("protocol", t.label .. " sent a gzip body this transport did not ask for", true)
    end
    local inflated, kind, message = t.inflate(body, t.max_body)
    if not inflated then return nil, failure(kind, message, true) end
    return inflated
  elseif encoding ~= "identity" then
    return nil, failure("protocol", ("%s sent an unsupported Content-Encoding: %s"):format(t.label, encoding), true)
  end
  return body
end

--- Sends one request on a connected socket and reads the whole answer,
-- within `deadline` (in `t.now()` seconds).
-- @return status, body, headers, keepalive; or nil, err
-- @local
function http1.exchange(t, sock, method, bytes, deadline)
  local ok, err = sock:send(bytes)
  if not ok then
    if err == "timeout" then
      return nil, failure("timeout", ("sending to %s took longer than %d ms"):format(t.label, t.timeout_ms), true)
    end
    return nil, failure("network", ("the connection to %s failed while sending: %s"):format(t.label, err), true)
  end
  local status, headers, minor = http1.read_head(t, sock)
  if not status then return nil, headers end
  local body, keepalive = read_body(t, sock, method, status, headers, deadline)
  if not body then return nil, keepalive end
  body, err = decode(t, headers, body)
  if not body then return nil, err end
  return status, body, headers, keepalive and keeps_alive(headers, minor)
end

return http1
