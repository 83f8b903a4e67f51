--- Injected faults: what the next N matching requests get instead of (or on
-- top of) a normal answer.
--
-- A fault spec (the body of `POST /_sandbox/faults`):
--
--     { "method": "PATCH",              -- optional, any method when absent or "*"
--       "path": "/v1/contacts/*",       -- optional; a trailing * matches a prefix
--       "count": 2,                     -- how many matching requests (default 1)
--       "after": 1,                     -- matching requests let through first (default 0)
--       "kind": "status",               -- see below
--       "status": 503, "retry_after": 2,
--       "delay_ms": 1500 }              -- optional with any kind
--
-- Kinds: `status` answers `status` (default 503) with an error envelope and
-- `Retry-After` (default 1 for 429 and 503; `false` leaves it out) without
-- touching any data; `delay` answers normally after `delay_ms`; `drop`
-- closes the connection without an answer and without touching any data;
-- `drop_after` does the work, then closes without an answer; `truncate`
-- does the work and sends half the body with the full Content-Length;
-- `malformed` does the work and answers a body that is not valid JSON.
-- @module envoke.sandbox.faults

local json = require "envoke.sandbox.json"

local faults = {}

local KINDS = { status = true, delay = true, drop = true, drop_after = true, truncate = true, malformed = true }

local Faults = {}
Faults.__index = Faults

--- An empty fault list.
function faults.new()
  return setmetatable({ list = {}, next_id = 1 }, Faults)
end

-- JSON numbers decode as floats on Lua 5.3+; keep integers printing as such.
local to_integer = math.tointeger or function(v) return v end

local function whole(v, min, max)
  return type(v) == "number" and v == math.floor(v) and v >= min and v <= max
end

--- Validates and adds a fault spec.
-- @treturn table|nil the stored fault, or nil and a list of problems
function Faults:add(spec)
  local problems = {}
  if type(spec) ~= "table" then return nil, { "a fault must be an object" } end
  local kind = spec.kind
  if kind == nil then kind = spec.status and "status" or spec.delay_ms and "delay" end
  if not KINDS[kind] then
    problems[#problems + 1] = "kind must be one of status, delay, drop, drop_after, truncate, malformed"
  end
  local method = spec.method
  if method ~= nil and (type(method) ~= "string" or method == "") then
    problems[#problems + 1] = "method must be a string"
  end
  local path = spec.path
  if path ~= nil and (type(path) ~= "string" or path:sub(1, 1) ~= "/") then
    problems[#problems + 1] = "path must start with /"
  end
  local count = spec.count == nil and 1 or spec.count
  if not whole(count, 1, 1e9) then problems[#problems + 1] = "count must be a positive integer" end
  local after = spec.after == nil and 0 or spec.after
  if not whole(after, 0, 1e9) then problems[#problems + 1] = "after must be an integer >= 0" end
  local status = spec.status == nil and 503 or spec.status
  if kind == "status" and not whole(status, 200, 599) then problems[#problems + 1] = "status must be 200..599" end
  local delay = spec.delay_ms == nil and 0 or spec.delay_ms
  if not whole(delay, 0, 600000) then problems[#problems + 1] = "delay_ms must be an integer from 0 to 600000" end
  if kind == "delay" and delay == 0 then problems[#problems + 1] = "a delay fault needs delay_ms" end
  local retry = spec.retry_after
  if retry == nil and (status == 429 or status == 503) then retry = 1 end
  if retry == false or retry == json.null then retry = nil end
  if retry ~= nil and not (whole(retry, 0, 86400) or type(retry) == "string") then
    problems[#problems + 1] = "retry_after must be seconds, an HTTP date, or false"
  end
  if #problems > 0 then return nil, problems end

  count, status, delay, after = to_integer(count), to_integer(status), to_integer(delay), to_integer(after)
  if type(retry) == "number" then retry = to_integer(retry) end
  local fault = {
    id = self.next_id, kind = kind, count = count, after = after, delay_ms = delay,
    method = (method and method ~= "*") and method:upper() or nil,
    path = path,
    status = kind == "status" and status or nil,
    retry_after = kind == "status" and retry or nil,
  }
  self.next_id = self.next_id + 1
  self.list[#self.list + 1] = fault
  return fault
end

local function path_matches(pattern, path)
  if not pattern then return true end
  if pattern:sub(-1) == "*" then return path:sub(1, #pattern - 1) == pattern:sub(1, -2) end
  return pattern == path
end

--- Takes one use of the first fault matching a request; while that fault
-- still lets requests through (`after`), the request gets none.
-- @treturn table|nil the fault
function Faults:take(method, path)
  for i, f in ipairs(self.list) do
    if (not f.method or f.method == method) and path_matches(f.path, path) then
      if f.after > 0 then
        f.after = f.after - 1
        return nil
      end
      f.count = f.count - 1
      if f.count <= 0 then table.remove(self.list, i) end
      return f
    end
  end
  return nil
end

--- The pending faults, as JSON-ready data.
function Faults:pending()
  local out = json.array()
  for i, f in ipairs(self.list) do out[i] = f end
  return out
end

--- Removes every pending fault.
function Faults:clear()
  self.list = {}
end

return faults
