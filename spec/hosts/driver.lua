--- The game every host spec runs (LÖVE, Neovim, the C host): each frame makes
-- a few contact writes and calls `client:poll(0)` once, timing that poll with
-- `os.clock`; once every write has answered, a quitting frame makes more
-- calls and the host quits, which closes the client with a drain.
--
--     local driver = require "driver"          -- spec/hosts/ on package.path
--     local game = driver.new()                 -- at load time: makes the client
--     while game:frame() do end                 -- the host's loop; false: quit now
--     game:quit()                               -- from the host's quit hook
--
-- Settings come from the environment (the spec sets them):
--   ENVOKE_BASE_URL, ENVOKE_API_ID, ENVOKE_API_KEY   the sandbox (as for envoke.new)
--   HOST_CA_FILE        the sandbox's CA, for HTTPS
--   HOST_OUT            results go to HOST_OUT .. ".results" and HOST_OUT .. ".frames"
--   HOST_NAME           the emails' prefix (unique per run)
--   HOST_CALLS (300), HOST_PER_FRAME (25), HOST_QUIT_CALLS (20),
--   HOST_DRAIN_MS (5000), HOST_MAX_FRAMES (3600)
--
-- HOST_OUT.results, one fact a line (read by spec/hosts/harness.lua):
--   call I PHASE EMAIL ok ID | call I PHASE EMAIL err KIND SENT      a callback ran
--   twice I                   a callback ran again
--   pending_after_close N     after_close MESSAGE (what a later call raised, or "none")
--   client_cpu_us US   close_cpu_us US   frames N   rss_kb KB (peak)   gave_up (HOST_MAX_FRAMES ran out)
--   done
-- HOST_OUT.frames, one line per frame: FRAME PHASE POLL_US SUBMIT_US FINISHED PENDING
-- (the bench reads them; specs never assert timings).

local clock = os.clock

local driver = {}

local Game = {}
Game.__index = Game

local function number(name, default)
  return math.floor(tonumber(os.getenv(name)) or default)
end

--- Makes the client (where a host should: at load time) and the game's state.
function driver.new()
  local out = assert(os.getenv("HOST_OUT"), "HOST_OUT is not set")
  local self = setmetatable({
    out = out, name = os.getenv("HOST_NAME") or "host",
    calls = number("HOST_CALLS", 300), per_frame = number("HOST_PER_FRAME", 25),
    quit_calls = number("HOST_QUIT_CALLS", 20), drain_ms = number("HOST_DRAIN_MS", 5000),
    max_frames = number("HOST_MAX_FRAMES", 3600),
    phase = "run", made = 0, answered = 0, frame_no = 0,
    calls_log = {}, frames_log = {}, facts = {}, seen = {},
  }, Game)
  local envoke = require "envoke"
  local t0 = clock()
  -- retries stay on (the default): a host gets what a user gets.
  self.client = envoke.new{ ca_file = os.getenv("HOST_CA_FILE"), timeout = 30 }
  self.facts[#self.facts + 1] = ("client_cpu_us %.1f"):format((clock() - t0) * 1e6)
  return self
end

-- One write, an insert or an upsert by turns, with a unique email.
function Game:call(phase)
  self.made = self.made + 1
  local i = self.made
  local email = ("%s-%d@hosts.example.com"):format(self.name, i)
  local c = self.client:contact{ email = email, first_name = "H" .. i }
  local function done(contact, err)
    if self.seen[i] then
      self.calls_log[#self.calls_log + 1] = "twice " .. i
      return
    end
    self.seen[i] = true
    if phase == "run" then self.answered = self.answered + 1 end
    if contact then
      self.calls_log[#self.calls_log + 1] = ("call %d %s %s ok %s"):format(i, phase, email, tostring(contact.id))
    else
      self.calls_log[#self.calls_log + 1] = ("call %d %s %s err %s %s"):format(
        i, phase, email, tostring(err and err.kind), tostring(err and err.sent))
    end
  end
  if i % 2 == 1 then
    c:insert_async(done)
  else
    c:upsert_async({ keyfield = "email" }, done)
  end
end

--- One frame: new calls, then one timed `poll(0)`.
-- @treturn boolean false when the host should quit now
function Game:frame()
  self.frame_no = self.frame_no + 1
  local t0 = clock()
  if self.phase == "run" then
    for _ = 1, self.per_frame do
      if self.made >= self.calls then break end
      self:call("run")
    end
  else
    for _ = 1, self.quit_calls do self:call("quit") end
  end
  local t1 = clock()
  local finished = self.client:poll(0)
  local t2 = clock()
  self.frames_log[#self.frames_log + 1] = ("%d %s %.1f %.1f %d %d"):format(
    self.frame_no, self.phase, (t2 - t1) * 1e6, (t1 - t0) * 1e6, finished, self.client:pending())
  if self.phase == "quit" then return false end
  if self.answered >= self.calls then
    self.phase = "quit" -- the next frame is the last: it makes calls and quits
  elseif self.frame_no >= self.max_frames then
    self.facts[#self.facts + 1] = "gave_up"
    return false
  end
  return true
end

local function write(path, lines)
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
end

--- The host is quitting: close the client with a drain, then write the results.
function Game:quit()
  if self.quitted then return end
  self.quitted = true
  local t0 = clock()
  self.client:close{ drain_ms = self.drain_ms }
  local facts = self.facts
  facts[#facts + 1] = ("close_cpu_us %.1f"):format((clock() - t0) * 1e6)
  facts[#facts + 1] = "pending_after_close " .. tostring(self.client:pending())
  local ok, problem = pcall(function()
    self.client:contact{ email = "late@hosts.example.com" }:upsert_async(nil, function() end)
  end)
  facts[#facts + 1] = "after_close " .. (ok and "none" or tostring(problem):gsub("\n", " "))
  facts[#facts + 1] = "frames " .. self.frame_no
  local status = io.open("/proc/self/status", "r")
  if status then
    facts[#facts + 1] = "rss_kb " .. (status:read("*a"):match("VmHWM:%s*(%d+)") or "0")
    status:close()
  end
  write(self.out .. ".frames", self.frames_log)
  local lines = {}
  for _, l in ipairs(self.calls_log) do lines[#lines + 1] = l end
  for _, l in ipairs(facts) do lines[#lines + 1] = l end
  lines[#lines + 1] = "done"
  write(self.out .. ".results", lines)
end

--- Writes an error a host caught (so the spec shows it), for hosts whose own
-- error report goes nowhere useful (LÖVE's screen, Neovim's message area).
function driver.report_error(message)
  local out = os.getenv("HOST_OUT")
  if not out then return end
  local f = io.open(out .. ".error", "w")
  if f then
    f:write(tostring(message), "\n")
    f:close()
  end
end

return driver
