-- transport_misuse: one misuse table for every transport (the transport
-- contract, issue 12). `run` calls a transport's `request` and `submit` with
-- each misuse and returns what happened, as plain data, so that the same
-- table runs in busted (the curl pool, the in-process transport) and inside
-- nginx and HAProxy (their transports); spec/transport/contract_spec.lua
-- compares the outcomes.
--
--   local misuse = require "transport_misuse"
--   misuse.run(t, closed_t) --> { { row, fn, raised, message }, ... }
--   misuse.accepted(t)        --> { { row, fn, raised, message, status }, ... }
--   misuse.construct(new, settings) --> { { row, raised, message }, ... }
--   misuse.normalize(message) --> the message without position and module prefix
local M = {}

local long_name = ("X"):rep(257)

-- Each row: a misuse and the reason every transport must raise with, for
-- `request` (numbering as Lua does for a method call: the method is #1).
M.rows = {
  { "unknown method", "BREW", "/v1/settings", nil, nil, "#1", "unsupported HTTP method 'BREW'" },
  { "lower-case method", "get", "/v1/settings", nil, nil, "#1", "unsupported HTTP method 'get'" },
  { "no method", nil, "/v1/settings", nil, nil, "#1", "string expected, got nil" },
  { "table method", {}, "/v1/settings", nil, nil, "#1", "string expected, got table" },
  { "relative path", "GET", "v1/settings", nil, nil, "#2", "path must start with '/'" },
  { "no path", "GET", nil, nil, nil, "#2", "string expected, got nil" },
  { "space in path", "GET", "/v1/a b", nil, nil, "#2",
    "path has a byte that must be percent-encoded (byte 6, code 32)" },
  { "fragment in path", "GET", "/v1#x", nil, nil, "#2",
    "path has a byte that must be percent-encoded (byte 4, code 35)" },
  { "header smuggled in path", "GET", "/x\nHost: evil", nil, nil, "#2",
    "path has a byte that must be percent-encoded (byte 3, code 10)" },
  { "raw UTF-8 in path", "GET", "/\195\169", nil, nil, "#2",
    "path has a byte that must be percent-encoded (byte 2, code 195)" },
  { "GET with a body", "GET", "/v1/settings", "x", nil, "#3", "a GET request has no body" },
  { "HEAD with a JSON body", "HEAD", "/v1/settings", { a = 1 }, nil, "#3", "a HEAD request has no body" },
  { "number body", "POST", "/v1/contacts", 5, nil, "#3", "body must be a string, a table or nil" },
  { "boolean body", "POST", "/v1/contacts", true, nil, "#3", "body must be a string, a table or nil" },
  { "headers not a table", "GET", "/v1/settings", nil, "X-A: 1", "#4", "table expected, got string" },
  { "header name with a space", "GET", "/v1/settings", nil, { ["X A"] = "1" }, "#4",
    "header name 'X A' has a character not allowed in a name" },
  { "CR LF in a header value", "GET", "/v1/settings", nil, { ["X-A"] = "a\r\nX-B: b" }, "#4",
    "header 'X-A' has CR, LF or NUL in its value" },
  { "NUL in a header value", "GET", "/v1/settings", nil, { ["X-A"] = "a\0b" }, "#4",
    "header 'X-A' has CR, LF or NUL in its value" },
  { "table header value", "GET", "/v1/settings", nil, { ["X-A"] = {} }, "#4", "header values must be strings" },
  { "number header name", "GET", "/v1/settings", nil, { [1] = "x" }, "#4", "header names must be strings" },
  { "empty header name", "GET", "/v1/settings", nil, { [""] = "x" }, "#4",
    "header name must be 1 to 256 characters" },
  { "header name of 257 bytes", "GET", "/v1/settings", nil, { [long_name] = "x" }, "#4",
    "header name must be 1 to 256 characters" },
  -- Framing headers: a caller's value would desync the request.
  { "a caller's Content-Length", "POST", "/v1/contacts", "{}", { ["Content-Length"] = "1" }, "#4",
    "header 'Content-Length' is set by the transport itself" },
  { "a caller's Transfer-Encoding", "POST", "/v1/contacts", "{}", { ["Transfer-Encoding"] = "chunked" }, "#4",
    "header 'Transfer-Encoding' is set by the transport itself" },
  { "a caller's Connection other than close", "GET", "/v1/settings", nil, { Connection = "Upgrade" }, "#4",
    "header 'Connection' is set by the transport itself" },
}

-- Rows whose reason is not about one argument: the module names itself.
M.other_rows = {
  { "a body JSON cannot hold", "POST", "/v1/contacts", { n = 0 / 0 }, nil,
    "^cannot encode the request body as JSON: %$%.n: NaN is not a finite number" },
}

-- What every transport accepts (and sends): no raise for these.
M.accepted_rows = {
  { "Connection: close (bulk inserts)", "GET", "/v1/settings", nil, { Connection = "close" } },
  { "a number header value", "GET", "/v1/settings", nil, { ["X-Count"] = 7 } },
  { "a query with percent-encoding", "GET", "/v1/settings?x=%20y&z=1", nil, nil },
  { "an empty body on PATCH", "PATCH", "/v1/settings", "", nil },
}

-- Calls with the method-call syntax, on lines of their own, and not as tail
-- calls, so that argument numbers and positions come out as for a user's call.
local CALLS = {
  request = function(t, r)
    local a, b = t:request(r[2], r[3], r[4], r[5])
    return a, b
  end,
  submit = function(t, r)
    local id = t:submit(r[2], r[3], r[4], r[5])
    return id
  end,
}

local function outcome(t, fn, row)
  local ok, a, b = pcall(CALLS[fn], t, row)
  local message = not ok and tostring(a) or nil
  local status = ok and (type(a) == "number" and fn == "request" and a or nil) or nil
  return { row = row[1], fn = fn, raised = not ok, message = message, status = status,
           err = ok and type(b) == "table" and b.kind or nil }
end

--- Every misuse row through `request` and `submit`, and a closed transport's
-- calls.
function M.run(t, closed)
  local out = {}
  for _, list in ipairs{ M.rows, M.other_rows } do
    for _, row in ipairs(list) do
      for _, fn in ipairs{ "request", "submit" } do out[#out + 1] = outcome(t, fn, row) end
    end
  end
  for _, fn in ipairs{ "request", "submit" } do
    out[#out + 1] = outcome(closed, fn, { "a closed transport", "GET", "/v1/settings" })
  end
  return out
end

--- The accepted rows through `request` (they reach the server).
function M.accepted(t)
  local out = {}
  for _, row in ipairs(M.accepted_rows) do out[#out + 1] = outcome(t, "request", row) end
  return out
end

M.bad_urls = {
  { "ftp://127.0.0.1", "^option 'base_url' must start with http:// or https://$" },
  { "127.0.0.1:9", "^option 'base_url' must start with http:// or https://$" },
  { "http://", "^option 'base_url' has no host$" },
  { "http://user:pass@127.0.0.1", "^option 'base_url' must not carry credentials %(use [%w_]+ and [%w_]+%)$" },
  { "http://127.0.0.1/?q=1", "^option 'base_url' must not have a query, a fragment or spaces$" },
  { "http://127.0.0.1/#f", "^option 'base_url' must not have a query, a fragment or spaces$" },
  { "http://127.0.0.1/a b", "^option 'base_url' must not have a query, a fragment or spaces$" },
  -- A bad port is refused when the transport is made, not at its first request.
  { "http://127.0.0.1:0", "^option 'base_url' has a bad port$" },
  { "http://127.0.0.1:65536/v1", "^option 'base_url' has a bad port$" },
  { "https://[::1]:99999999999999999999", "^option 'base_url' has a bad port$" },
  { "http://127.0.0.1:8o", "^option 'base_url' has a bad host or port$" },
  { "http://:80", "^option 'base_url' has a bad host or port$" },
  { "http://[::1", "^option 'base_url' has a bad host or port$" },
}

--- Each bad base URL through a transport's `new(settings)`.
function M.construct(new, settings)
  local out = {}
  for _, u in ipairs(M.bad_urls) do
    local s = {}
    for k, v in pairs(settings) do s[k] = v end
    s.base_url = u[1]
    local ok, err = pcall(new, s)
    out[#out + 1] = { row = u[1], raised = not ok, message = not ok and tostring(err) or nil }
  end
  return out
end

--- The message without a "file:line: " position and an "envoke...: " module prefix.
function M.normalize(message)
  message = tostring(message):gsub("^[^\n:]+:%d+: ", "")
  return (message:gsub("^envoke[%w%._]*: ", ""))
end

return M
