--- Errors returned by every call that reaches the network, and the one way
-- the library raises on a programmer's mistake.
-- A call that fails returns `nil, err`; `err` is a table with
-- `kind`, `status`, `message`, `errors`, `retryable`, `attempts` (and `retry_after`,
-- `curl_code`, `sent` where known) that prints well with `tostring`.
-- @module envoke.errors
local errors = {}

-- Every file of the library lives under this source prefix ("@/…/envoke/").
local LIBRARY = debug.getinfo(1, "S").source:match("^(.*[/\\])[^/\\]*$")

local function in_library(info)
  return info.what == "C" or info.what == "tail" or (LIBRARY and info.source:sub(1, #LIBRARY) == LIBRARY)
end

--- Raises a misuse error at the first caller outside the library, as
-- `luaL_argerror` does for C functions: the message names the caller's line,
-- never one of the library's.
-- @tparam string fmt a `string.format` pattern (the message gets an "envoke: " prefix)
-- @param ... its arguments
-- @local
function errors.raise(fmt, ...)
  local message = select("#", ...) > 0 and fmt:format(...) or fmt
  -- "envoke.new: …" and "envoke.core: …" name their function already.
  if message:sub(1, 6) ~= "envoke" then message = "envoke: " .. message end
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then error(message, 0) end
    if not in_library(info) then error(message, level) end
    level = level + 1
  end
end

--- The reason of an error raised by `raise` (or any Lua error), without its position.
-- @param e an error value
-- @treturn string
-- @local
function errors.reason(e)
  return (tostring(e):gsub("^[^\n]-:%d+: ", ""):gsub("^envoke: ", ""))
end

-- Secrets shorter than this are not worth hiding, and hiding them would
-- garble every message they happen to occur in.
local MIN_SECRET = 4

local function plain(s) return (s:gsub("%p", "%%%0")) end

--- A function that removes the given secrets from an error value, in place:
-- from its message, its `errors` and its `body`, whatever put them there (a
-- server may echo a credential back).
-- @tparam table secrets strings (nil entries allowed)
-- @treturn function `redact(err)` returning err
-- @local
function errors.redactor(secrets)
  local patterns = {}
  for _, secret in pairs(secrets) do
    if type(secret) == "string" and #secret >= MIN_SECRET then patterns[#patterns + 1] = plain(secret) end
  end
  local function scrub(text)
    if type(text) ~= "string" then return text end
    for _, p in ipairs(patterns) do text = text:gsub(p, "***") end
    return text
  end
  return function(err)
    if #patterns == 0 then return err end
    err.message, err.body = scrub(err.message), scrub(err.body)
    for i, e in ipairs(err.errors) do err.errors[i] = scrub(e) end
    return err
  end
end

--- The metatable of every error value.
errors.Error = {}
errors.Error.__index = errors.Error

local List = { __tostring = function(self) return table.concat(self, "; ") end }

function errors.Error:__tostring()
  local head = "envoke: " .. tostring(self.kind)
  if self.status then head = head .. " (HTTP " .. self.status .. ")" end
  local text = head .. ": " .. tostring(self.message)
  if type(self.errors) == "table" and #self.errors > 0 then
    local list = {}
    for i, e in ipairs(self.errors) do list[i] = tostring(e) end
    text = text .. " [" .. table.concat(list, "; ") .. "]"
  end
  if type(self.attempts) == "number" and self.attempts > 1 then
    text = text .. (" (after %d attempts)"):format(self.attempts)
  end
  return text
end

--- Makes an error value.
-- @tparam string kind one of validation, auth, not_found, duplicate, rate_limited,
--   server, network, timeout, tls, too_large, protocol; also memory, cancelled, and
--   unavailable (inside nginx, a phase without cosockets)
-- @tparam table fields status, message, errors, retryable, ...
-- @treturn table the error
-- @local
function errors.new(kind, fields)
  local e = fields or {}
  e.kind = kind
  e.message = e.message or kind
  e.errors = setmetatable(e.errors or {}, List)
  if e.retryable == nil then e.retryable = false end
  return setmetatable(e, errors.Error)
end

--- True when v is an error value made here.
function errors.is(v)
  return getmetatable(v) == errors.Error
end

--- Wraps a failure reported by a transport (`envoke.core` or the cosocket one).
-- @tparam table t `{kind, message, curl_code, sent, retryable}`
-- @local
function errors.from_transport(t)
  return errors.new(t.kind, {
    message = t.message, curl_code = t.curl_code, sent = t.sent, retryable = t.retryable,
  })
end

-- Statuses a later attempt may well get past; other 4xx and 500 will not change.
local RETRYABLE_STATUS = { [429] = true, [502] = true, [503] = true, [504] = true }

local function kind_of_status(status, list)
  if status == 401 or status == 403 then return "auth" end
  if status == 404 then return "not_found" end
  if status == 409 then return "duplicate" end
  if status == 429 then return "rate_limited" end
  if status >= 500 then return "server" end
  -- Envoke answers most failures with a 400 envelope; its error texts are the
  -- only hint of a missing or duplicate contact. `errors` stays the authority.
  for _, e in ipairs(list) do
    local text = tostring(e):lower()
    if text:find("not found", 1, true) then return "not_found" end
    if text:find("already exists", 1, true) then return "duplicate" end
  end
  return status < 500 and "validation" or "server"
end

--- Seconds to wait from a `Retry-After` value (seconds or an HTTP date), or nil.
-- @tparam string|nil value
-- @tparam[opt] number now epoch seconds (default os.time())
-- @local
function errors.retry_after(value, now)
  if type(value) ~= "string" then return nil end
  local seconds = tonumber(value:match("^%s*(%d+)%s*$"))
  if seconds then return seconds end
  -- IMF-fixdate, the form RFC 9110 requires senders to use.
  local d, mon, y, hh, mm, ss = value:match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                   Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
  if not d or not months[mon] then return nil end
  local t = require("envoke.schema").time.epoch(tonumber(y), months[mon], tonumber(d),
                                                tonumber(hh), tonumber(mm), tonumber(ss))
  local wait = t - (now or os.time())
  return wait > 0 and wait or 0
end

--- Makes the error of a non-2xx answer (or a 2xx whose envelope says `success: false`).
-- @tparam number status
-- @param data the decoded body, or nil when it was not JSON
-- @tparam[opt] table headers lower-cased names
-- @tparam[opt] string raw the body as received
-- @local
function errors.from_response(status, data, headers, raw)
  local list, message = {}, nil
  if type(data) == "table" then
    if type(data.result_data) == "table" and type(data.result_data.errors) == "table" then
      for i, e in ipairs(data.result_data.errors) do list[i] = tostring(e) end
    end
    if type(data.result_text) == "string" then message = data.result_text end
  end
  if not message then
    message = (raw and raw ~= "" and data == nil) and ("HTTP " .. status .. " with a body that is not JSON")
      or ("HTTP " .. status)
  end
  return errors.new(kind_of_status(status, list), {
    status = status, message = message, errors = list,
    retryable = RETRYABLE_STATUS[status] or false,
    retry_after = errors.retry_after(headers and headers["retry-after"]),
  })
end

return errors
