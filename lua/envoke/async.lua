--- Non-blocking calls: every `*_async` call returns a handle at once;
-- `client:poll(timeout_ms)` drives every request in flight and runs the
-- callbacks of the finished ones. A game or app host calls `poll(0)` once
-- per frame and never stalls.
--
-- Retries and the rate limit apply as for blocking calls, but their waits
-- become "not before" times that `poll` honours instead of sleeps. Callbacks
-- run only from `poll`, inside `pcall`: one that raises is reported to the
-- logger (or stderr) and kept on its handle; the other requests go on.
-- @module envoke.async
local core = require "envoke.core"
local retry = require "envoke.retry"

local async = {}

--- A request in flight, waiting, or done.
-- Fields: `result`, `err` (once done), `attempts`, `callback_error`.
-- @type Handle
local Handle = {}
Handle.__index = Handle

--- True once the call has finished (or was cancelled).
function Handle:done()
  return self.state == "done" or self.state == "cancelled"
end

--- Drives the client until this call finishes; returns its result (or nil, err).
-- @tparam[opt] number timeout_ms give up after this long (the handle stays pending):
--   returns nil, err with `kind = "timeout"` and the call goes on
function Handle:wait(timeout_ms)
  local engine = self.engine
  local deadline = timeout_ms and core.now() + timeout_ms
  while not self:done() do
    local left = deadline and deadline - core.now() or 100
    if left <= 0 then
      return nil, require("envoke.errors").new("timeout",
        { message = "wait: the call has not finished yet", retryable = true })
    end
    engine:poll(left < 100 and left or 100)
  end
  if self.state == "cancelled" then return nil, self.err end
  return self.result, self.err
end

--- Cancels the call; its callback never runs.
-- @treturn boolean true when it was still pending
function Handle:cancel()
  if self:done() then return false end
  local engine = self.engine
  if self.state == "inflight" then
    engine.transport:cancel(self.id)
    engine.inflight[self.id] = nil
  end
  engine:unqueue(self)
  self.state = "cancelled"
  self.err = require("envoke.errors").new("cancelled", { message = "the call was cancelled" })
  engine.pending = engine.pending - 1
  return true
end

--- @section engine

local Engine = {}
Engine.__index = Engine

--- The engine of one client (made on its first async call).
-- @local
function async.new(client)
  return setmetatable({
    client = client, transport = client.transport,
    inflight = {},   -- transport id -> handle
    waiting = {},    -- handles to send at handle.due (retries, rate limit)
    ready = {},      -- handles whose callbacks run at the next poll
    pending = 0,
  }, Engine)
end

function Engine:unqueue(handle)
  for _, list in ipairs{ self.waiting, self.ready } do
    for i = #list, 1, -1 do
      if list[i] == handle then table.remove(list, i) end
    end
  end
end

-- Sends the handle's request now. The first send happens inside the caller's
-- own call, so a bad argument raises there and not in a later poll.
function Engine:send(handle)
  local plan, client = handle.plan, self.client
  handle.attempts = handle.attempts + 1
  -- The clock is read only for what needs it: retries (elapsed) and the logger.
  if client.retry and not handle.started then handle.started = core.now() end
  if client.logger then
    client:log{ event = "request", method = plan.method, path = plan.path, attempt = handle.attempts }
    handle.sent_at = core.now()
  end
  local id = self.transport:submit(plan.method, plan.path, plan.body)
  handle.id, handle.state = id, "inflight"
  self.inflight[id] = handle
end

-- Sends now, or at the time the rate limit allows.
function Engine:schedule(handle, not_before)
  local bucket = self.client.bucket
  if not bucket and not not_before then return self:send(handle) end
  local now = core.now()
  local due = not_before or now
  if bucket then
    local wait = bucket:reserve(now)
    if now + wait > due then due = now + wait end
  end
  if due <= now then return self:send(handle) end
  handle.state, handle.due = "waiting", due
  self.waiting[#self.waiting + 1] = handle
end

--- Starts a call for a plan (see `envoke.client`); the callback gets `(result, err, handle)`.
-- @local
function Engine:submit(plan, callback)
  local handle = setmetatable({ plan = plan, callback = callback, engine = self, attempts = 0 }, Handle)
  self.pending = self.pending + 1
  self:schedule(handle)
  return handle
end

--- A handle that is done already (nothing to send); its callback runs at the next poll.
-- @local
function Engine:resolved(result, err, callback)
  local handle = setmetatable({ engine = self, attempts = 0, callback = callback,
                                result = result, err = err, state = "ready" }, Handle)
  self.pending = self.pending + 1
  self.ready[#self.ready + 1] = handle
  return handle
end

local function finish(self, handle)
  handle.state = "done"
  self.pending = self.pending - 1
  local cb = handle.callback
  if cb then
    local ok, problem = pcall(cb, handle.result, handle.err, handle)
    if not ok then
      handle.callback_error = problem
      if self.client.logger then
        self.client:log{ event = "callback_error", error = problem }
      else
        io.stderr:write("envoke: a callback raised: ", tostring(problem), "\n")
      end
    end
  end
end

-- Turns a transport's answer into the handle's outcome, or schedules a retry.
function Engine:complete(handle, status, raw, headers)
  local client, plan = self.client, handle.plan
  local data, err = client:outcome(status, raw, headers, plan.envelope)
  if client.logger then
    client:log{ event = err and "error" or "response", method = plan.method, path = plan.path,
                status = status or nil, attempt = handle.attempts, error = err,
                elapsed_ms = core.now() - handle.sent_at }
  end
  if err then
    local policy = client.retry
    local wait = policy and handle.started and retry.delay(policy, handle.attempts, err, plan.idempotent,
                                                           (core.now() - handle.started) / 1000)
    err.attempts = handle.attempts
    if wait then
      if client.logger then
        client:log{ event = "retry", method = plan.method, path = plan.path, attempt = handle.attempts,
                    wait_ms = wait * 1000, error = err }
      end
      return self:schedule(handle, core.now() + wait * 1000)
    end
    handle.err = err
  elseif plan.finish then
    handle.result, handle.err = plan.finish(plan, data)
  else
    handle.result = data
  end
  finish(self, handle)
end

--- Drives every request: sends those whose time has come, waits up to
-- timeout_ms for answers, runs callbacks of finished calls.
-- @tparam[opt=0] number timeout_ms 0 never waits
-- @treturn integer how many calls finished during this poll
function Engine:poll(timeout_ms)
  timeout_ms = timeout_ms or 0
  local finished = 0
  local ready = self.ready
  if #ready > 0 then
    self.ready = {}
    for _, handle in ipairs(ready) do
      finish(self, handle)
      finished = finished + 1
    end
    timeout_ms = 0 -- something happened: do not wait
  end

  -- Send what is due; how long until the next one is.
  local now, next_due = nil, nil
  local waiting = self.waiting
  if #waiting > 0 then
    now = core.now()
    self.waiting = {}
    for _, handle in ipairs(waiting) do
      if handle.due <= now then
        self:send(handle)
      else
        self.waiting[#self.waiting + 1] = handle
        if not next_due or handle.due < next_due then next_due = handle.due end
      end
    end
  end
  local wait = timeout_ms
  if next_due and next_due - now < wait then wait = math.max(0, math.floor(next_due - now)) end

  local transport = self.transport
  if next(self.inflight) ~= nil then
    transport:perform(math.floor(wait))
  elseif wait > 0 and next_due then
    (self.client.sleep)(wait) -- only waiting requests: sleep until the first is due
  end
  while true do
    local id, status, raw, headers = transport:finished()
    if not id then break end
    local handle = self.inflight[id]
    if handle then
      self.inflight[id] = nil
      local before = self.pending
      self:complete(handle, status, raw, headers)
      if self.pending < before then finished = finished + 1 end
    end
  end
  return finished
end

return async
