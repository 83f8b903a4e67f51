--- The log of API requests received (test controls read it): method, path,
-- query, body and headers with the Authorization secret removed, plus the
-- status answered, any fault applied and any notes (e.g. a refused
-- consent downgrade).  Control requests are not logged.
-- @module envoke.sandbox.log

local auth = require "envoke.sandbox.auth"
local json = require "envoke.sandbox.json"

local log = {}

local Log = {}
Log.__index = Log

-- Enough for the load spec; older entries go first.
local DEFAULT_LIMIT = 100000

--- An empty log keeping at most `limit` entries.
function log.new(limit)
  return setmetatable({ entries = {}, first = 1, seq = 0, limit = limit or DEFAULT_LIMIT }, Log)
end

local ENTRY_ORDER = { "seq", "time", "method", "path", "query", "headers", "body", "status", "fault", "notes" }

--- Records a request; returns the entry so the answer can be added later.
function Log:add(method, path, query_string, headers, body, time)
  local h = json.object()
  for k, v in pairs(headers or {}) do
    local name = tostring(k):lower()
    h[name] = name == "authorization" and auth.redact(v) or v
  end
  self.seq = self.seq + 1
  local entry = json.object({
    seq = self.seq, time = time, method = method, path = path,
    query = query_string or "", headers = h, body = body or "",
  }, ENTRY_ORDER)
  self.entries[self.seq] = entry
  if self.seq - self.first + 1 > self.limit then
    self.entries[self.first] = nil
    self.first = self.first + 1
  end
  return entry
end

--- The entries, oldest first.
function Log:list()
  local out = json.array()
  for i = self.first, self.seq do out[#out + 1] = self.entries[i] end
  return out
end

--- Forgets every entry (sequence numbers keep counting).
function Log:clear()
  self.entries = {}
  self.first = self.seq + 1
end

return log
