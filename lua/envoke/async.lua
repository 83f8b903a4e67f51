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
local errors = require "envoke.errors"
local retry = require "envoke.retry"

local async = {}

-- A field named with this value exists from the start (see Engine:submit; LuaJIT
-- leaves a literal `nil` out of a constructor's table size).
local UNSET = nil

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
-- Like `poll`, it runs the callbacks of every call that finishes meanwhile, this one's included.
-- @tparam[opt] number timeout_ms give up after this long (the handle stays pending):
--   returns nil, err with `kind = "timeout"` and the call goes on
function Handle:wait(timeout_ms)
  local max = async.MAX_WAIT_MS
  if timeout_ms ~= nil and (type(timeout_ms) ~= "number" or not (timeout_ms >= 0 and timeout_ms <= max)) then
    errors.raise("wait: timeout_ms must be a number of milliseconds from 0 to %d", async.MAX_WAIT_MS)
  end
  local engine = self.engine
  local deadline = timeout_ms and core.now() + timeout_ms
  while not self:done() do
    local left = deadline and deadline - core.now() or 100
    if left <= 0 then
      return nil, errors.new("timeout", { message = "wait: the call has not finished yet", retryable = true })
    end
    engine:poll(left < 100 and left or 100)
  end
  return self.result, self.err
end

-- Ends a call that has not finished with a `cancelled` error. `sent` is false
-- only when no attempt of it can have reached the server. A plan sent at most
-- once (idempotent = false) is retried by the engine only when an attempt never
-- left: its earlier attempts reached nothing (a bulk job's earlier writes are
-- for the bulk loop to judge).
local function cancel(engine, handle, why)
  local sent = handle.attempts > 1 and handle.plan.idempotent ~= false or nil
  if handle.state == "inflight" then
    local _, reached = engine.transport:cancel(handle.id)
    engine.inflight[handle.id] = nil
    if reached ~= false then sent = true end
  end
  engine:unqueue(handle)
  handle.state, handle.result = "cancelled", nil
  handle.err = errors.new("cancelled", { message = why, sent = sent or false, attempts = handle.attempts })
  engine.pending = engine.pending - 1
end

--- Cancels the call; its callback never runs.
-- @treturn boolean true when it was still pending
function Handle:cancel()
  if self:done() then return false end
  cancel(self.engine, self, "the call was cancelled")
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

-- One attempt begins: counted, its start kept for the retry budget
-- (max_elapsed counts from the first send), and told to the logger. The
-- clock is read only for what needs it: retries and the logger.
local function begin(engine, handle)
  local plan, client = handle.plan, engine.client
  handle.attempts = handle.attempts + 1
  if client.retry and not handle.started then handle.started = core.now() end
  if client.logger then
    client:log{ event = "request", method = plan.method, path = plan.path, attempt = handle.attempts }
    handle.sent_at = core.now()
  end
end

-- Sends the handle's request now. The first send happens inside the caller's
-- own call, so a bad argument raises there and not in a later poll. The
-- attempt begins once the transport has taken the request: one it refuses is
-- neither counted nor logged.
function Engine:send(handle)
  local plan = handle.plan
  local id = self.transport:submit(plan.method, plan.path, plan.body, plan.headers, plan.envelope == true)
  begin(self, handle)
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
-- `plan.headers` (optional) adds request headers (bulk inserts send `Connection: close`).
-- With `into` (a list) instead of a callback, the finished handle is appended
-- to it: the bulk loop's way, without a call per item.
-- @local
function Engine:submit(plan, callback, into)
  -- Every field a handle gets later is named here: the table is made at its
  -- final size instead of growing on each call. The engine's own are false
  -- until set (a nil in a constructor is skipped on 5.4, so a later store adds
  -- the key); result and err, which the caller reads, are nil (UNSET) until then.
  return self:launch(setmetatable({ plan = plan, callback = callback, engine = self, attempts = 0, id = false,
                                    state = false, started = false, result = UNSET, err = UNSET, into = into,
                                    bulk_job = UNSET }, Handle))
end

--- Starts a call on a handle its caller made: a table with `plan`, `attempts`
-- (0 for a first call) and `into`, which the engine fills as it fills its own
-- (`id`, `state`, `started`, `result`, `err`). The bulk loop's jobs are their
-- own handles this way: one table per item, not two.
-- @local
function Engine:launch(handle)
  local client = self.client
  if client.closed then client:check_open() end
  -- Scheduled first, so a request the transport refuses strands nothing.
  if client.bucket then self:schedule(handle) else Engine.send(self, handle) end
  self.pending = self.pending + 1
  return handle
end

--- A handle that is done already (nothing to send); its callback runs at the next poll.
-- @local
function Engine:resolved(result, err, callback)
  self.client:check_open()
  local handle = setmetatable({ engine = self, attempts = 0, callback = callback,
                                result = result, err = err, state = "ready" }, Handle)
  self.pending = self.pending + 1
  self.ready[#self.ready + 1] = handle
  return handle
end

local function run_callback(self, handle)
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

--- Runs a finished call's callback inside `pcall` (anything with `callback`,
-- `result` and `err`): one that raises is reported, kept as `callback_error`, and
-- stops nothing else.
-- @local
Engine.run_callback = run_callback

-- A finished call goes to its owner: appended to its `into` list, or its callback run.
local function hand_over(self, handle)
  local into = handle.into
  if into then into[#into + 1] = handle return end
  run_callback(self, handle)
end

local function finish(self, handle)
  handle.state = "done"
  self.pending = self.pending - 1
  hand_over(self, handle)
end

-- A plan's finish step turns a decoded answer into the call's result; one
-- that fails must end its own call, never strand it.
local function finish_plan(plan, data)
  local ok, result, err = pcall(plan.finish, plan, data)
  if ok then return result, err end
  return nil, errors.new("protocol", { message = "the answer could not be read: " .. errors.reason(result) })
end

-- A decoded answer becomes the call's result through the plan's finish step;
-- `protected`: a step that may raise runs in pcall (see finish_plan).
local function resolve(handle, plan, data, protected)
  local step = plan.finish
  if not step then
    handle.result = data
  elseif protected and not plan.finish_never_raises then
    handle.result, handle.err = finish_plan(plan, data)
  else
    handle.result, handle.err = step(plan, data)
  end
end

-- An attempt's answer becomes the call's outcome (handle.result, handle.err),
-- or the seconds to wait before the next attempt. Blocking and non-blocking
-- calls share it: they differ only in how they wait.
local function settle(engine, handle, status, data, err, protected)
  local client, plan = engine.client, handle.plan
  if client.logger then
    client:log{ event = err and "error" or "response", method = plan.method, path = plan.path,
                status = status or nil, attempt = handle.attempts, error = err,
                elapsed_ms = async.round_ms(core.now() - handle.sent_at) }
  end
  if err then
    local policy = not client.closed and client.retry
    local wait = policy and handle.started and retry.delay(policy, handle.attempts, err, plan.idempotent,
                                                           (core.now() - handle.started) / 1000)
    err.attempts = handle.attempts
    if wait then
      if client.logger then
        client:log{ event = "retry", method = plan.method, path = plan.path, attempt = handle.attempts,
                    wait_ms = async.round_ms(wait * 1000), error = err }
      end
      return wait
    end
    handle.err = err
  else
    -- A blocking call's finish may raise to its caller; a non-blocking one's must not.
    resolve(handle, plan, data, protected)
  end
  return nil
end

-- A non-blocking call's answer: done (its callback runs; returns true), or scheduled again.
-- `checked`: the transport has already found a good write envelope and `raw` is its result_data.
function Engine:complete(handle, status, raw, headers, checked)
  local plan = handle.plan
  local data, err = raw, nil
  local client = self.client
  if not checked then data, err = client:outcome(status, raw, headers, plan.envelope, plan.expect) end
  if err == nil and not client.logger then -- the usual end: nothing to log or retry (as in Engine:run)
    if plan.finish_never_raises then -- a write's: called here, one call less per write
      handle.result, handle.err = plan.finish(plan, data)
    else
      resolve(handle, plan, data, true)
    end
    finish(self, handle)
    return true
  end
  local wait = settle(self, handle, status, data, err, true)
  if wait then
    self:schedule(handle, core.now() + wait * 1000)
    return false
  end
  finish(self, handle)
  return true
end

--- Runs a plan to its end, blocking: the same attempts, logging, retries and
-- rate limit as `submit`, with each transfer made by the transport's blocking
-- `request` (for the C pool itself a submit and a drive until done) and each
-- wait slept (or, in nginx, yielded) instead of scheduled.
-- @local
-- @return the result, or nil, err
function Engine:run(plan)
  local client, transport = self.client, self.transport
  local bucket, logger = client.bucket, client.logger
  -- The handle settle() reads is made only for a logger or a failure; until
  -- then the retry budget's start (max_elapsed counts from the first send) is a local.
  local handle = logger and { plan = plan, attempts = 0 }
  local started = not logger and client.retry and core.now() or nil
  while true do
    if bucket then
      local wait = bucket:reserve(core.now())
      if wait > 0 then client.sleep(wait) end
    end
    if handle then begin(self, handle) end
    -- A transport that can check a write's envelope itself (the C pool) answers
    -- `checked` and the result_data alone: no body string, no headers table.
    local status, raw, headers, checked = transport:request(plan.method, plan.path, plan.body, plan.headers,
                                                            plan.envelope == true)
    local data, err = raw, nil
    if not checked then data, err = client:outcome(status, raw, headers, plan.envelope, plan.expect) end
    if err == nil and not logger then -- the usual end: nothing to count, log or retry
      local done = plan.finish
      if done then return done(plan, data) end
      return data
    end
    handle = handle or { plan = plan, attempts = 1, started = started }
    local wait = settle(self, handle, status, data, err, false)
    if not wait then return handle.result, handle.err end
    client.sleep(wait * 1000)
  end
end

--- Starts a call: a plan to send, or (plan nil) a result known already;
-- the callback (a function or nil) gets `(result, err, handle)` from `poll`.
-- @local
function Engine:start(callback, plan, result, err)
  if callback ~= nil and type(callback) ~= "function" then
    errors.raise("the callback must be a function, got %s", type(callback))
  end
  if plan then return self:submit(plan, callback) end
  return self:resolved(result, err, callback)
end

-- The calls resolved already (`ready`, taken off the engine) finish: their
-- callbacks run. Returns how many, and true when a callback closed the client.
local function finish_ready(engine, ready)
  local finished = 0
  engine.ready = {}
  for _, handle in ipairs(ready) do
    -- An earlier callback may have cancelled it (its callback never runs), or
    -- closed the client: a close's shutdown no longer sees this list, so the
    -- calls still ready end here, as the shutdown ends the ready ones it sees.
    if handle.state == "ready" then
      finish(engine, handle)
      finished = finished + 1
    end
  end
  return finished, engine.client.closed
end

-- A waiting call whose send the transport refused (it raised): there is no
-- caller's line to raise at, and raising out of poll would strand the calls
-- still waiting. The call ends with the refusal at the next poll.
local function refused(engine, handle, problem)
  handle.err = errors.new("validation", { message = errors.reason(problem), sent = false,
                                          attempts = handle.attempts })
  handle.state = "ready"
  engine.ready[#engine.ready + 1] = handle
end

-- Sends the waiting calls whose time has come. Returns how long poll may wait
-- for answers (timeout_ms, or less: until the next one is due) and when that is.
local function send_due(engine, timeout_ms)
  local waiting = engine.waiting
  local now, next_due = core.now(), nil
  engine.waiting = {}
  for _, handle in ipairs(waiting) do
    if handle.due <= now then
      local sent, problem = pcall(engine.send, engine, handle)
      if not sent then refused(engine, handle, problem) end
    else
      engine.waiting[#engine.waiting + 1] = handle
      if not next_due or handle.due < next_due then next_due = handle.due end
    end
  end
  if next_due and next_due - now < timeout_ms then return math.max(0, math.floor(next_due - now)), next_due end
  return timeout_ms, next_due
end

-- Waits up to wait_ms for the transfers in flight; with none, sleeps until the
-- first waiting call is due (next_due).
local function wait_for_answers(engine, wait_ms, next_due)
  if next(engine.inflight) ~= nil then
    engine.transport:perform(math.floor(wait_ms))
  elseif wait_ms > 0 and next_due then
    (engine.client.sleep)(wait_ms)
  end
end

-- The transfers the transport has finished complete their calls (done, or
-- scheduled again); returns how many calls ended.
local function collect(engine, client)
  local transport, inflight = engine.transport, engine.inflight
  local next_finished = transport.finished
  local finished = 0
  while not client.closed do
    local id, status, raw, headers, checked = next_finished(transport)
    if not id then break end
    local handle = inflight[id]
    if handle then
      inflight[id] = nil
      if Engine.complete(engine, handle, status, raw, headers, checked) then finished = finished + 1 end
    end
  end
  return finished
end

--- Drives every request: sends those whose time has come, waits up to
-- timeout_ms for answers, runs callbacks of finished calls.
-- @tparam[opt=0] number timeout_ms 0 never waits
-- @treturn integer how many calls finished during this poll
-- @local
function Engine:poll(timeout_ms)
  timeout_ms = timeout_ms or 0
  local client = self.client
  if client.closed then return 0 end
  local finished = 0
  if #self.ready > 0 then
    local closed
    finished, closed = finish_ready(self, self.ready)
    if closed then return finished end
    timeout_ms = 0 -- something happened: do not wait
  end
  local wait_ms, next_due = timeout_ms, nil
  -- Tested here, not in send_due: the usual poll makes no call and reads no clock for it.
  if #self.waiting > 0 then wait_ms, next_due = send_due(self, timeout_ms) end
  wait_for_answers(self, wait_ms, next_due)
  return finished + collect(self, client)
end

--- Drives the calls in flight until none is pending or `ms` milliseconds have passed.
-- @local
-- @treturn boolean true when none is pending
-- @local
function Engine:drain(ms)
  local deadline = core.now() + ms
  while self.pending > 0 and not self.client.closed do
    local left = deadline - core.now()
    if left <= 0 then break end
    self:poll(left < 100 and left or 100)
  end
  return self.pending == 0
end

--- Ends every call still pending (the client is closing): finished ones get
-- their callbacks, the others a `cancelled` error and then their callbacks.
-- @local
function Engine:shutdown()
  local ended = {}
  for _, handle in ipairs(self.ready) do ended[#ended + 1] = handle end
  self.ready = {}
  for _, handle in ipairs(self.waiting) do ended[#ended + 1] = handle end
  for _, handle in pairs(self.inflight) do ended[#ended + 1] = handle end
  self.waiting = {}
  for _, handle in ipairs(ended) do
    if handle.state == "ready" then
      handle.state = "done"
      self.pending = self.pending - 1
    else
      cancel(self, handle, "the client was closed before the call finished")
    end
  end
  self.inflight = {}
  for _, handle in ipairs(ended) do hand_over(self, handle) end
end

--- Rounds a figure for the logger to a tenth of a millisecond.
-- @local
function async.round_ms(ms)
  return math.floor(ms * 10 + 0.5) / 10
end

--- The longest wait `poll`, `wait` and `drain` accept: one day, in milliseconds.
-- @local
async.MAX_WAIT_MS = 86400000

return async
