--- The journal of a bulk run: an append-only text file recording each item's
-- outcome by input position and key, so that a rerun over the same input
-- skips what is done.
--
-- Lines (one per event, flushed in batches by the bulk loop):
--
--     envoke-journal 1 insert email      the header: format, operation, key field
--     s 17 - - .                         item 17 (an insert) may be sent from now on
--     ok 17 ann@example.com - .          item 17 is applied (inserted, saved, reconciled)
--     fail 18 bob@example.com validation .   item 18 failed for good: a rerun skips it
--     again 19 cy@example.com network .      item 19 failed, a rerun tries it again
--
-- An `s` line is written (and flushed) before the request can leave, and an
-- outcome only once it is known, so a process killed at any moment leaves a
-- journal that never claims too much: a rerun looks up every insert that was
-- in flight instead of inserting it again. A last line cut short by the kill
-- is ignored. Memory stays small whatever the run's size: done positions are
-- kept as ranges (a run finishes items nearly in order), and keys only for a
-- sample of positions, to notice a rerun over different input.
-- @module envoke.journal
local errors = require "envoke.errors"

local journal = {}

local Journal = {}
Journal.__index = Journal

local FORMAT = "envoke-journal 1"

-- Keys are written percent-encoded, so that any byte fits on one line.
local function escape(key)
  key = tostring(key or "")
  if key == "" then return "-" end
  return (key:gsub("[%%%s%c%-\128-\255]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function unescape(text)
  if text == "-" then return "" end
  return (text:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Positions whose key is remembered: every 1024th, and the last ones read.
local SAMPLE_EVERY, SAMPLE_LAST = 1024, 64

-- Adds position i to the done ranges (kept as start -> end and end -> start;
-- an overlap from a position recorded twice is merged when the ranges are sorted).
local function add_done(self, i)
  local by_start, by_end = self.by_start, self.by_end
  if by_start[i] or by_end[i] then return end
  local left, right = by_end[i - 1], by_start[i + 1]
  local a, b = i, i
  if left then a = left; by_end[i - 1] = nil end
  if right then b = right; by_start[i + 1] = nil end
  by_start[a], by_end[b] = b, a
end

-- Reads an existing journal; raises on one that is not a journal or was written by another operation.
local function load(self, f, path)
  local header = f:read("*l")
  if header == nil then return end -- empty: a new journal
  local op, keyfield
  if header:sub(1, #FORMAT + 1) == FORMAT .. " " then op, keyfield = header:sub(#FORMAT + 2):match("^(%S+) (%S+)$") end
  if not op then errors.raise("%s: %s is not an envoke journal", self.caller, path) end
  if op ~= self.op or keyfield ~= self.keyfield then
    errors.raise("%s: journal %s was written by %s_all with keyfield %s, not %s with keyfield %s",
      self.caller, path, op, keyfield, self.caller, self.keyfield)
  end
  self.has_header = true
  local last, n = {}, 0 -- a ring of the last keys read
  local rest = ""
  while true do
    local chunk = f:read(65536)
    if not chunk then break end
    chunk = rest .. chunk
    local cut = chunk:match(".*()\n") or 0
    rest = chunk:sub(cut + 1)
    for line in chunk:sub(1, cut):gmatch("([^\n]*)\n") do
      -- Every line ends in " .": a line cut short never parses, even if a newline followed it.
      local tag, pos, key = line:match("^(%a+) (%d+) (%S+) %S+ %.$")
      pos = tonumber(pos)
      if tag == "s" and pos then
        if pos > self.max_started then self.max_started = pos end
      elseif pos then
        if tag == "ok" or tag == "fail" then
          add_done(self, pos)
          if tag == "ok" then self.prior_ok = self.prior_ok + 1 else self.prior_failed = self.prior_failed + 1 end
        end
        if pos % SAMPLE_EVERY == 1 then self.keys[pos] = unescape(key) end
        n = n + 1
        last[(n % SAMPLE_LAST) + 1] = { pos, key }
      end
    end
  end
  self.torn = rest ~= "" -- cut by a kill: it never happened
  for _, e in pairs(last) do self.keys[e[1]] = unescape(e[2]) end
end

-- The done ranges, sorted and merged.
local function sorted_ranges(by_start)
  local ranges = {}
  for a, b in pairs(by_start) do ranges[#ranges + 1] = { a, b } end
  table.sort(ranges, function(x, y) return x[1] < y[1] end)
  local merged = {}
  for _, r in ipairs(ranges) do
    local top = merged[#merged]
    if top and r[1] <= top[2] + 1 then
      if r[2] > top[2] then top[2] = r[2] end
    else
      merged[#merged + 1] = r
    end
  end
  return merged
end

--- Opens (or creates) a journal for one operation.
-- @tparam string path
-- @tparam string op `save`, `insert` or `upsert`
-- @tparam string keyfield the key recorded with each item
-- @tparam string caller for messages (`insert_all`)
-- @return the journal, or nil, err (`kind = "io"`) when the file cannot be read or written
-- @local
function journal.open(path, op, keyfield, caller)
  local self = setmetatable({
    path = path, op = op, keyfield = keyfield, caller = caller,
    by_start = {}, by_end = {}, keys = {},
    max_started = 0, records = 0, prior_ok = 0, prior_failed = 0,
    buffer = {}, ranges = nil, cursor = 1,
  }, Journal)
  local f = io.open(path, "r")
  if f then
    load(self, f, path)
    f:close()
  end
  local out, problem = io.open(path, "a")
  if not out then
    return nil, errors.new("io", { message = caller .. ": cannot write the journal: " .. tostring(problem),
                                   sent = false })
  end
  out:setvbuf("full", 65536)
  self.file = out
  if not self.has_header then
    out:write(FORMAT, " ", op, " ", keyfield, "\n")
  elseif self.torn then
    out:write("\n") -- the cut line stays alone on its line
  end
  out:flush()
  -- Sorted ranges, for lookups in increasing position order.
  self.ranges, self.by_start, self.by_end = sorted_ranges(self.by_start), nil, nil
  return self
end

--- True when the item at `pos` is done (ok, or failed for good) in an earlier run.
-- Positions must be asked in increasing order.
-- @local
function Journal:done(pos)
  local ranges, c = self.ranges, self.cursor
  while ranges[c] and ranges[c][2] < pos do c = c + 1 end
  self.cursor = c
  local r = ranges[c]
  return r ~= nil and pos >= r[1]
end

--- True when an earlier run may have sent the item at `pos` without learning the outcome.
-- @local
function Journal:maybe_sent(pos)
  return pos <= self.max_started
end

--- The key recorded for `pos` in an earlier run, where one was kept (nil otherwise).
-- @local
function Journal:key(pos)
  return self.keys[pos]
end

--- Records that an insert may be sent from now on (written at the next flush, which comes before the send).
-- @local
function Journal:started(pos)
  local b = self.buffer
  b[#b + 1] = "s " .. pos .. " - - .\n"
end

--- Records an outcome: `tag` is `ok`, `fail` (for good) or `again` (a rerun retries it).
-- @local
function Journal:record(tag, pos, key, kind)
  local b = self.buffer
  b[#b + 1] = tag .. " " .. pos .. " " .. escape(key) .. " " .. (kind or "-") .. " .\n"
end

--- Writes what is buffered. One write for the batch; the kernel has it once this returns.
-- @return true, or nil, err
-- @local
function Journal:flush()
  local b = self.buffer
  if #b == 0 then return true end
  self.buffer = {}
  local ok, problem = self.file:write(table.concat(b))
  if ok then ok, problem = self.file:flush() end
  if not ok then
    return nil, errors.new("io", { message = self.caller .. ": cannot write the journal: " .. tostring(problem) })
  end
  return true
end

--- Flushes and closes the file (idempotent).
-- @local
function Journal:close()
  if not self.file then return true end
  local ok, err = self:flush()
  self.file:close()
  self.file = nil
  return ok, err
end

journal.escape = escape

return journal
