--- Errors returned by every call that reaches the network, and the one way
-- the library raises on a programmer's mistake.
-- A call that fails returns `nil, err`; `err` is a table with
-- `kind`, `status`, `message`, `errors`, `retryable`, `attempts` (and `retry_after`,
-- `curl_code`, `sent`, and `details` for what a failed bulk call or a duplicate
-- names, where known) that prints well with `tostring`.
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
    local d = err.details
    if d then
      d.id = scrub(d.id)
      for i, v in ipairs(d.not_found or {}) do d.not_found[i] = scrub(v) end
      for _, f in ipairs(d.failed or {}) do
        f.contact_id, f.contact_email, f.reason = scrub(f.contact_id), scrub(f.contact_email), scrub(f.reason)
      end
    end
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

-- What a 400's texts must say for each kind a request may expect. Envoke's
-- exact words are not documented, so a text alone never decides: the request
-- must be one that can fail that way (see `expect` below).
local TEXT_OF = {
  not_found = { "not found", "does not exist", "no contact", "unknown contact" },
  duplicate = { "already exist", "duplicate", "already in use", "already used" },
}

local function says(list, kind)
  for _, e in ipairs(list) do
    local text = tostring(e):lower()
    for _, words in ipairs(TEXT_OF[kind]) do
      if text:find(words, 1, true) then return true end
    end
  end
  return false
end

local function kind_of_status(status, list, expect)
  if status == 401 or status == 403 then return "auth" end
  if status == 404 then return "not_found" end
  if status == 409 then return "duplicate" end
  if status == 429 then return "rate_limited" end
  if status >= 500 then return "server" end
  if status == 400 and expect then
    for _, kind in ipairs(expect) do
      if says(list, kind) then return kind end
    end
  end
  return "validation"
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

local function text_of(v)
  if type(v) == "string" then return v end
  if type(v) == "number" and v == math.floor(v) then return ("%d"):format(v) end
end

-- What a failure answers besides `errors` (docs/envoke-api.md §8): the id of
-- the existing hook a duplicate names; a bulk assignment's `processed`,
-- `not_found` and `failed`. Copied as plain strings and numbers, or nil.
local function details_of(rd)
  if type(rd) ~= "table" then return nil end
  local d, any = {}, false
  d.id = text_of(rd.id)
  if type(rd.processed) == "number" then d.processed = rd.processed end
  if type(rd.not_found) == "table" then
    d.not_found = {}
    for i, v in ipairs(rd.not_found) do d.not_found[i] = text_of(v) or tostring(v) end
  end
  if type(rd.failed) == "table" then
    d.failed = {}
    for _, f in ipairs(rd.failed) do
      if type(f) == "table" then
        d.failed[#d.failed + 1] = { contact_id = text_of(f.contact_id), contact_email = text_of(f.contact_email),
                                    reason = text_of(f.reason) or "" }
      end
    end
  end
  for _ in pairs(d) do any = true end
  return any and d or nil
end

--- Makes the error of a non-2xx answer (or a 2xx whose envelope says `success: false`).
-- @tparam number status
-- @param data the decoded body, or nil when it was not JSON
-- @tparam[opt] table headers lower-cased names
-- @tparam[opt] string raw the body as received
-- @local
-- @tparam[opt] table expect the kinds a 400 may mean for this request, in order:
--   `{ "duplicate" }` for an insert, `{ "not_found", "duplicate" }` for an update, ...
function errors.from_response(status, data, headers, raw, expect)
  if status >= 300 and status < 400 then
    -- Never followed (the credentials would go along): the API does not
    -- redirect, so one means a wrong base_url or something in between.
    local location = headers and headers.location
    local message = type(location) == "string"
      and "redirect to " .. location:gsub("^(%a[%w+.-]*://)[^/?#]*@", "%1***@") .. " not followed"
      or "HTTP " .. status .. " redirect without a Location, not followed"
    return errors.new("protocol", { status = status, message = message, retryable = false })
  end
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
  return errors.new(kind_of_status(status, list, expect), {
    status = status, message = message, errors = list,
    details = type(data) == "table" and details_of(data.result_data) or nil,
    retryable = RETRYABLE_STATUS[status] or false,
    retry_after = errors.retry_after(headers and headers["retry-after"]),
  })
end

return errors
