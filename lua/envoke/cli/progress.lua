--- Progress on stderr for the `envoke` command: a bar redrawn in place on a
-- terminal (done/total, rate, ETA, failures), a plain line every few seconds
-- otherwise (a log file, CI).
-- @module envoke.cli.progress
local core = require "envoke.core"

local progress = {}

local Progress = {}
Progress.__index = Progress

--- Whether stderr is a terminal (asked once, of the shell: Lua has no isatty).
-- @local
function progress.stderr_is_tty()
  local ok, how, code = os.execute("[ -t 2 ]")
  if type(ok) == "number" then return ok == 0 end -- Lua 5.1
  return ok == true and how == "exit" and code == 0
end

--- A progress reporter.
-- @tparam table opts `tty` (bool), `total` (or nil), `interval` (seconds between plain lines, default 5),
--   `out` (default io.stderr), `verb` (e.g. "imported")
-- @local
function progress.new(opts)
  local now = core.now()
  return setmetatable({
    tty = opts.tty, total = opts.total, out = opts.out or io.stderr,
    interval_ms = (opts.interval or 5) * 1000, started = now, last = now, drawn = false,
    verb = opts.verb or "imported",
  }, Progress)
end

local function clock(seconds)
  seconds = math.floor(seconds + 0.5)
  local h, m, s = math.floor(seconds / 3600), math.floor(seconds / 60) % 60, seconds % 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, s) end
  return ("%d:%02d"):format(m, s)
end

function Progress:figures(done)
  local seconds = (core.now() - self.started) / 1000
  local rate = seconds > 0 and done / seconds or 0
  local eta
  if self.total and rate > 0 and self.total >= done then eta = clock((self.total - done) / rate) end
  return rate, eta
end

--- Reports `done` rows so far (`failed` of them failed); draws at most every 100 ms on a terminal.
-- @local
function Progress:update(done, failed)
  local now = core.now()
  if self.tty then
    if now - self.last < 100 and done ~= self.total then return end
    self.last = now
    local rate, eta = self:figures(done)
    local bar = ""
    if self.total and self.total > 0 then
      local width = 24
      local filled = math.floor(width * math.min(done, self.total) / self.total)
      bar = "[" .. ("#"):rep(filled) .. ("."):rep(width - filled) .. "] "
    end
    self.out:write(("\r%s%d/%s  %.0f/s  ETA %s  %d failed\27[K"):format(bar, done, tostring(self.total or "?"),
      rate, eta or "-", failed))
    self.out:flush()
    self.drawn = true
  elseif now - self.last >= self.interval_ms then
    self.last = now
    local rate, eta = self:figures(done)
    self.out:write(("progress: %d/%s rows, %.0f/s, ETA %s, %d failed\n"):format(done, tostring(self.total or "?"),
      rate, eta or "-", failed))
    self.out:flush()
  end
end

--- Clears the bar (on a terminal) before the summary line.
-- @local
function Progress:finish()
  if self.tty and self.drawn then
    self.out:write("\r\27[K")
    self.out:flush()
  end
end

return progress
