--- Many saves at once: `client:save_all`, `insert_all`, `upsert_all`.
--
-- Envoke has no batch endpoint, so throughput comes from keeping
-- `concurrency` requests in flight over the pool's reused connections, with
-- the client's retries and rate limit. Every input comes back accounted for;
-- `on_result` is called as each one finishes.
--
-- Items come from a list or from an iterator (a function returning the next
-- item, or nil at the end); with `results = false` nothing is kept per item,
-- so memory stays O(concurrency) however many items flow through.
--
-- Every reported outcome is true. The bulk loop runs the retries of writes
-- itself (the engine only retries what provably never left), so it knows
-- when an attempt may have been applied although it failed:
--
-- - an insert whose outcome is ambiguous (connection cut after sending, a
--   timeout, a 5xx other than 503) is reconciled: the contact is looked up by
--   remote_id or email, and reported `reconciled = true` when found, sent
--   again only when it is provably absent. Inserts go out on connections that
--   close after the answer (`Connection: close`), so libcurl never re-sends
--   one by itself on a reused connection that turns out dead;
-- - a save or upsert that failed after an attempt that may have been applied
--   says `applied = "unknown"`.
--
-- `journal = "path"` records finished items (envoke.journal), so a rerun over
-- the same input skips what is done and looks up the inserts that were in
-- flight when the first run died.
-- @module envoke.bulk
local core = require "envoke.core"
local Contact = require "envoke.contact"
local errors = require "envoke.errors"
local query = require "envoke.query"
local retry = require "envoke.retry"
local raise = errors.raise

local bulk = {}

local OPTIONS = { concurrency = "number", keyfield = "string", on_result = "function", on_progress = "function",
                  results = "boolean", contacts = "boolean", journal = "string", total = "number" }

local function check_options(opts, caller)
  opts = opts or {}
  if type(opts) ~= "table" then raise("%s: options must be a table", caller) end
  for k, v in pairs(opts) do
    if OPTIONS[k] ~= type(v) then
      raise("%s: %s", caller, OPTIONS[k] and ("option '" .. k .. "' must be a " .. OPTIONS[k])
        or ("unknown option '" .. tostring(k) .. "'"))
    end
  end
  local c = opts.concurrency or 8
  if c ~= math.floor(c) or c < 1 or c > 256 then
    raise("%s: option 'concurrency' must be an integer from 1 to 256", caller)
  end
  if opts.keyfield and opts.keyfield ~= "id" and opts.keyfield ~= "email" and opts.keyfield ~= "remote_id" then
    raise("%s: option 'keyfield' must be id, email or remote_id, got %s", caller, opts.keyfield)
  end
  if opts.total and not (opts.total >= 0 and opts.total == math.floor(opts.total)) then
    raise("%s: option 'total' must be a whole number", caller)
  end
  return opts, c
end

-- Inserts close their connection after the answer: a connection reused for
-- an insert could die before the answer, and libcurl would then send the
-- insert again by itself, unseen.
local CLOSE = { Connection = "close" }

-- The engine sends a bulk write at most once: every failure comes back to the run.
local ONCE = Contact.once_kinds(CLOSE)

-- A success's `unapplied` (see `envoke.contact:unapplied`), worked out only
-- when read: it needs the answer decoded, which a bulk run otherwise avoids.
local SUCCESS = { __index = function(r, key)
  if key == "unapplied" and r.contact then return r.contact:unapplied() end
end }

-- Whether a failed attempt may have been applied. The server said no to the
-- statuses below 500 and to 503 (unavailable); a request that provably never
-- left was not applied; anything else (a cut connection, a timeout, 500, 502,
-- 504, an unreadable 2xx) may have been.
local function maybe_applied(err)
  local status = err.status
  if status then return not (status < 500 or status == 503) end
  if err.sent == false then return false end
  return true
end

-- Only what an earlier run or a retry can change is retried by a rerun.
local FOR_GOOD = { validation = true, duplicate = true, not_found = true, protocol = true, too_large = true }

-- A job's outcome in the journal.
local function record(jnl, job, r)
  local tag = r.ok and "ok" or (r.applied == false and FOR_GOOD[r.err.kind]) and "fail" or "again"
  jnl:record(tag, job.pos, job.key or nil, not r.ok and r.err.kind or nil)
end

-- A job is its write's engine handle (see Engine:launch), and a run reuses
-- each job once its item has ended: at most `concurrency` are ever made, not
-- one per item (on 5.4, making and collecting them cost more than the rest of
-- the run's bookkeeping). So that nothing of an earlier item survives, a job
-- is made with every field any step or the engine ever sets (false until
-- set), and `reuse` sets every one of them again, but `spare_plan`: the
-- job's last plan, filled again by the next (see Contact.planner).
local function new_job(into)
  return { pos = 0, item = false, key = false, attempts = 0, into = into, plan = false, spare_plan = false,
           contact = false, phase = false, due = false, resumed = false, cause = false, maybe = false,
           id = false, state = false, started = false, sent_at = false, result = false, err = false }
end

--- A job as a run makes it (for the spec that checks no field outlives its item).
-- @local
bulk.new_job = new_job

-- The job readied for the item at pos: every field as new_job sets it.
-- One store a line: a constant is stored by one VM instruction, a multiple assignment takes two.
local function reuse(job, pos, item, key)
  job.pos = pos
  job.item = item
  job.key = key or false
  job.attempts = 0
  job.plan = false
  job.contact = false
  job.phase = false
  job.due = false
  job.resumed = false
  job.cause = false
  job.maybe = false
  job.id = false
  job.state = false
  job.started = false
  job.sent_at = false
  job.result = false
  job.err = false
  return job
end

-- Calls step(run, entry) on every entry of the list, those appended meanwhile
-- included, then empties it: the run keeps one list of each kind throughout.
local function each_once(run, list, step)
  local n = 0
  while list[n + 1] ~= nil do
    n = n + 1
    step(run, list[n])
  end
  for i = 1, n do list[i] = nil end
end

-- Seconds since the job's first attempt began (for the retry policy's
-- max_elapsed); 0 for a job that only looked up so far.
local function elapsed(job) return job.started and (core.now() - job.started) / 1000 or 0 end

-- The lookup that settles an ambiguous insert: by remote_id when it has one, else by email.
local function lookup_plan(job)
  local body = job.plan.body
  local name = body.remote_id and body.remote_id ~= "" and "remote_id" or "email"
  return { method = "GET", idempotent = true, headers = CLOSE, finish = function(_, data) return data end,
           path = query.path("/v1/contacts", { filter = { [name] = body[name] }, sort = { id = "DESC" },
                                               limit = 100 }) }
end

-- Which listed contacts are the insert: every text field sent must match.
local function matching(list, body)
  local found, count = nil, 0
  for _, item in ipairs(list) do
    local same = type(item) == "table"
    for k, v in pairs(body) do
      if same and type(v) == "string" and k ~= "language" and not k:find("^consent_") then
        local got = item[k]
        if k == "email" then same = type(got) == "string" and got:lower() == v:lower() else same = got == v end
      end
    end
    if same then found, count = item, count + 1 end
  end
  return found, count
end

local function index(t, k) return t[k] end -- for pcall: an item's __index may raise

-- An item's key for the journal; nil when it has none or reading it raises.
local function item_key(item, key_name)
  if type(item) ~= "table" then return nil end
  local ok, v = pcall(index, item, key_name)
  return ok and v or nil
end

-- One run of `bulk.loop`: its state in fields, its steps as methods. The
-- steps every item takes (pull, prepare, send, arrive, succeed, report)
-- are the hot path of save_all: pull and report go through a turn's
-- items in one call, with the fields they need in locals, and the others
-- are called as Run.step(self, ...), which skips the lookup through __index.
local Run = {}
Run.__index = Run

-- Absent options and state are false, not nil: a nil field would be looked
-- up in Run as well, on every item.
function Run.new(client, op, items, opts, concurrency, jnl, key_name)
  local list, next_item, total = false, false
  if type(items) == "table" then
    list, total = items, #items
  else
    next_item, total = items, opts.total
  end
  return setmetatable({
    client = client, op = op, caller = op .. "_all", engine = client:engine(), policy = client.retry or false,
    planner = Contact.planner(op),
    is_insert = op == "insert", op_opts = opts.keyfield and { keyfield = opts.keyfield } or false,
    jnl = jnl or false, key_name = key_name, concurrency = concurrency,
    keep = opts.results ~= false, keep_contacts = opts.contacts ~= false,
    on_result = opts.on_result or false, on_progress = opts.on_progress or false,
    list = list, next_item = next_item, total = total, -- items from a list, or from an iterator
    results = {},
    summary = { total = 0, succeeded = 0, failed = 0, skipped = 0, reconciled = 0, unknown = 0, retried = 0 },
    started = core.now(),
    pos = 0, active = 0, done = 0, exhausted = false,
    to_send = {},  -- jobs to submit at the next turn of the loop
    waiting = {},  -- jobs waiting for their retry's time (job.due, in ms)
    arrived = {},  -- handles finished during the last poll (the engine appends them: one list for the run)
    spare = {},    -- jobs whose items have ended, to reuse (see new_job)
    finished = {}, -- jobs with a final outcome, for the caller's hooks
    mismatch = false,    -- the error when the input is not the one the journal was written for
    journal_err = false, -- the journal's first failure to flush
  }, Run)
end

-- A final outcome: the caller's hooks see it at the end of this turn. The
-- finished list holds each job followed by its outcome (no field on the job).
function Run:finish(job, r)
  r.attempts = job.attempts
  local finished = self.finished
  local n = #finished
  finished[n + 1], finished[n + 2] = job, r
end

-- As finish, inline: every item that succeeds comes here.
function Run:succeed(job, result, reconciled)
  local finished = self.finished
  local n = #finished
  finished[n + 1] = job
  local r = setmetatable({ ok = true, contact = result, applied = true, attempts = job.attempts }, SUCCESS)
  -- Counted here: report reading a success's absent `reconciled` would call SUCCESS's __index.
  if reconciled then
    r.reconciled = true
    self.summary.reconciled = self.summary.reconciled + 1
  end
  finished[n + 2] = r
end

-- applied: true, false or "unknown"; nil: "unknown" if an earlier attempt may have been applied.
function Run:fail(job, err, applied)
  if applied == nil then applied = job.maybe and "unknown" or false end
  -- The contact is the plan's once planned, else the one built (job.contact) if any.
  local plan = job.plan
  self:finish(job, { ok = false, err = err, contact = plan and plan.contact or job.contact or nil, applied = applied })
end

-- A job that could not be built or sent: this attempt never left (an earlier
-- one may have been applied: job.maybe).
function Run:refused(job, problem)
  local kind = self.client.closed and "cancelled" or "validation"
  self:fail(job, errors.new(kind, { message = errors.reason(problem), sent = false }))
end

-- The job goes out again (phase "write" or "lookup") in wait_ms.
function Run:later(job, wait_ms, phase)
  job.phase, job.due = phase, core.now() + wait_ms
  local waiting = self.waiting
  waiting[#waiting + 1] = job
end

-- Pulls items until `concurrency` are under way; those done in an earlier run are skipped.
function Run:pull()
  if self.exhausted or self.mismatch then return end
  local list, next_item, summary, jnl, prepare = self.list, self.next_item, self.summary, self.jnl, Run.prepare
  local spare = self.spare
  local pos, active, concurrency = self.pos, self.active, self.concurrency
  while active < concurrency do
    local item
    if list then item = list[pos + 1] else item = next_item() end
    if item == nil then self.exhausted = true break end
    pos = pos + 1
    local start, key = true, nil
    if jnl then
      start, key = self:recall(pos, item)
      if self.mismatch then break end
    end
    if start then
      active = active + 1
      local n = #spare
      local job = spare[n] or new_job(self.arrived)
      spare[n] = nil
      prepare(self, reuse(job, pos, item, key))
    end
  end
  self.pos, self.active = pos, active
  summary.total = pos
end

-- With a journal: whether the item at pos is to be started, and its key. A rerun
-- over other input stops the run; an item done in an earlier run is skipped.
function Run:recall(pos, item)
  local jnl, key = self.jnl, item_key(item, self.key_name)
  local recorded = jnl:key(pos)
  if recorded and tostring(key or "") ~= recorded then
    self.mismatch = ("%s: the journal does not match the input: item %d was %s, now %s"):format(self.caller, pos,
      recorded, tostring(key or "(none)"))
    return false
  end
  if not jnl:done(pos) then return true, key end
  local summary = self.summary
  summary.skipped = summary.skipped + 1
  self.done = self.done + 1
  if self.keep then self.results[pos] = { skipped = true } end
  if self.on_progress then self.on_progress(self.done, self.total) end
  return false
end

-- Plans the job's write and, with no journal to write first, sends it: one
-- pcall covers both, as either raising means the same (refused, never sent).
local function plan_and_launch(self, job, contact)
  local plan, result, err = self.planner(contact, self.op_opts or nil, ONCE, job.spare_plan or nil)
  if plan then
    job.plan, job.spare_plan = plan, plan
    if not self.jnl then self.engine:launch(job) end
  end
  return plan, result, err
end

-- Builds the job's contact and request, and sends it (or queues it until the
-- journal has its start; or settles it: nothing to send).
function Run:prepare(job)
  local item, built, contact = job.item, true, job.item
  if getmetatable(item) ~= Contact.metatable then built, contact = pcall(self.client.contact, self.client, item) end
  if not built then return self:refused(job, contact) end
  local planned, plan, result, err = pcall(plan_and_launch, self, job, contact)
  if not planned then
    job.contact = contact
    return self:refused(job, plan)
  end
  if not plan then
    if result then return Run.succeed(self, job, contact) end
    job.contact = contact
    return self:fail(job, err, false)
  end
  if not self.jnl then return end
  if self.is_insert then self:journal_start(job) end
  local to_send = self.to_send
  to_send[#to_send + 1] = job
end

-- An insert may leave from now on; one an earlier run may have sent is looked up before inserting.
function Run:journal_start(job)
  local jnl = self.jnl
  if jnl:maybe_sent(job.pos) then
    job.resumed = true
    job.phase = "lookup"
  end
  jnl:started(job.pos)
end

-- Submits the job's write (the job is its handle), or its lookup (a handle
-- of its own); the engine appends the handle to `arrived` when it is done.
function Run:send(job)
  local engine = self.engine
  if job.phase == "lookup" then
    local sent, handle = pcall(engine.submit, engine, lookup_plan(job), nil, self.arrived)
    if not sent then return self:fail(job, errors.new("cancelled", { message = errors.reason(handle) }), "unknown") end
    handle.bulk_job = job
    return
  end
  local sent, problem = pcall(engine.launch, engine, job)
  if not sent then return self:refused(job, problem) end
end

-- A write that failed: retry, reconcile, or report.
function Run:write_failed(job, err)
  local maybe = maybe_applied(err)
  if err.kind == "cancelled" then return self:fail(job, err, (maybe or job.maybe) and "unknown" or false) end
  if self.is_insert then
    if maybe or (job.resumed and err.kind == "duplicate") then
      job.cause = err
      -- A timed-out request may still be running on the server: give it a moment.
      return self:later(job, err.kind == "timeout" and 1000 or 0, "lookup")
    end
  elseif maybe then
    job.maybe = true
  end
  local policy = self.policy
  local wait = policy and err.retryable and retry.delay(policy, job.attempts, err, true, elapsed(job))
  if wait then return self:later(job, wait * 1000, "write") end
  self:fail(job, err)
end

-- The lookup of an ambiguous insert answered: found (reconciled), absent (sent again), or unknown.
function Run:lookup_done(job, data, err)
  local cause = job.cause or err
  if err then
    cause.reconcile_error = tostring(err)
    return self:fail(job, cause, "unknown")
  end
  if type(data) ~= "table" then
    return self:fail(job, errors.new("protocol", { message = "the lookup answered something other than a list" }),
                     "unknown")
  end
  local item, count = matching(data, job.plan.body)
  if count > 1 then
    return self:fail(job, errors.new("duplicate", { message = ("%d contacts match the insert: cannot tell which"
      .. " one it made"):format(count), sent = true }), "unknown")
  end
  if item then
    return self:succeed(job, Contact.from_server(self.client, item), true)
  end
  -- Provably absent: the insert was never applied, sending it is safe.
  if not job.cause then job.phase = "write" return self:send(job) end
  local policy = self.policy
  local wait = policy and retry.delay(policy, job.attempts, { retryable = true, sent = false }, true, elapsed(job))
  if wait then return self:later(job, wait * 1000, "write") end
  self:fail(job, cause, false)
end

-- A handle the engine finished: a job's write, or a lookup's own handle.
function Run:arrive(handle)
  local job = handle.bulk_job
  if job then return self:lookup_done(job, handle.result, handle.err) end
  job = handle
  if job.err then return self:write_failed(job, job.err) end
  if job.cause then job.cause = false end
  Run.succeed(self, job, job.result)
end

-- The finished jobs reach the summary, the journal and the caller's hooks, in
-- one loop: the run's fields are read once a turn, not once a job.
function Run:report()
  local finished, summary, jnl, results, spare = self.finished, self.summary, self.jnl, self.results, self.spare
  local keep, keep_contacts, on_result, on_progress = self.keep, self.keep_contacts, self.on_result, self.on_progress
  local total, done, succeeded, nspare = self.total, self.done, 0, #spare
  local n = 0
  while finished[n + 1] ~= nil do
    local job, r = finished[n + 1], finished[n + 2]
    n = n + 2
    done = done + 1
    if r.ok then
      succeeded = succeeded + 1
    else
      summary.failed = summary.failed + 1
      if r.applied == "unknown" then summary.unknown = summary.unknown + 1 end
    end
    if r.attempts > 1 then summary.retried = summary.retried + r.attempts - 1 end
    if jnl then record(jnl, job, r) end
    if on_result then on_result(job.pos, r, job.item) end
    if keep then
      if not keep_contacts then r.contact = nil end
      results[job.pos] = r
    end
    if on_progress then on_progress(done, total) end
    nspare = nspare + 1
    spare[nspare] = job
  end
  summary.succeeded = summary.succeeded + succeeded
  for i = 1, n do finished[i] = nil end
  self.active, self.done = self.active - (done - self.done), done
end

-- Connections left idle by earlier calls must not carry an insert (libcurl
-- would re-send it unseen if the server closed one after applying it):
-- enough concurrent requests that close their connection use them up first.
function Run:use_up_idle()
  local engine, client = self.engine, self.client
  local sent, back = 0, 0
  local function answered() back = back + 1 end
  for _ = 1, self.concurrency + 8 do
    local ok = pcall(engine.submit, engine, { method = "GET", path = "/v1/settings", idempotent = true,
                                              headers = CLOSE }, answered)
    if not ok then break end
    sent = sent + 1
  end
  while back < sent and not client.closed do engine:poll(100) end
end

-- Sends the waiting jobs whose time has come; returns when the next one is due (nil: none).
function Run:send_due()
  local now, still, next_due = core.now(), {}, nil
  local client = self.client
  for _, job in ipairs(self.waiting) do
    if job.due <= now or client.closed then
      self:send(job)
    else
      still[#still + 1] = job
      if not next_due or job.due < next_due then next_due = job.due end
    end
  end
  self.waiting = still
  return next_due
end

-- Nothing to hand over: waits for answers, or until the next retry is due (at most 100 ms).
function Run:idle(next_due)
  local wait = next_due and math.max(0, math.min(100, math.floor(next_due - core.now()))) or 100
  local engine = self.engine
  if engine.pending > 0 then
    engine:poll(wait)
  elseif next_due and wait > 0 then
    self.client.sleep(wait)
  end
end

-- Turns of the loop until every item is accounted for; returns the results and summary (nil, err
-- when the journal could not be written).
function Run:drive()
  local jnl, to_send, arrived, finished = self.jnl, self.to_send, self.arrived, self.finished
  local send, arrive = Run.send, Run.arrive
  while true do
    self:pull()
    -- The journal has every start before any of them can leave.
    if jnl and not self.journal_err then
      local _, err = jnl:flush()
      self.journal_err = err or false
    end
    each_once(self, to_send, send)
    local next_due
    if #self.waiting > 0 then next_due = self:send_due() end
    if #finished == 0 and #arrived == 0 then
      if self.active == 0 and (self.exhausted or self.mismatch) then break end
      self:idle(next_due)
    end
    each_once(self, arrived, arrive)
    -- The caller's hooks run here, outside the engine, so their errors reach the caller.
    self:report()
  end
  if self.mismatch then raise(self.mismatch) end
  if self.journal_err then return nil, self.journal_err end
  local summary = self.summary
  summary.elapsed = (core.now() - self.started) / 1000
  return self.results, summary
end

--- Runs one operation over every item.
-- @tparam envoke.client client
-- @tparam string op `save`, `insert` or `upsert`
-- @tparam table|function items contacts (from `client:contact`) or plain field tables, as a list or
--   from an iterator function (returns the next item, or nil at the end)
-- @tparam[opt] table opts `concurrency` (default 8), `keyfield` (save, upsert),
--   `on_result(i, result, item)` as each finishes, `on_progress(done, total)`,
--   `results` (false: keep none, the list comes back empty), `contacts` (false: results keep no contact),
--   `journal` (a file path), `total` (the item count of an iterator, for `on_progress`)
-- @treturn table results: `results[i] = { ok, contact, err, attempts, applied, reconciled, skipped }`;
--   a success also answers `unapplied` (the fields the server did not apply, see `contact:unapplied`)
-- @treturn table summary: `{ total, succeeded, failed, skipped, reconciled, unknown, retried, elapsed }`
-- @local
function bulk.run(client, op, items, opts)
  local caller = op .. "_all"
  client:check_open()
  if type(items) ~= "table" and type(items) ~= "function" then
    raise("%s: items must be a list or an iterator function", caller)
  end
  local concurrency
  opts, concurrency = check_options(opts, caller)
  local keyfield = opts.keyfield
  local key_name = op == "insert" and "email" or keyfield or "email"
  local jnl
  if opts.journal then
    local j, err = require("envoke.journal").open(opts.journal, op, key_name, caller)
    if not j then return nil, err end
    jnl = j
  end
  -- No pcall around the loop: a hook may yield (Lua 5.1 cannot yield across
  -- pcall). If a hook raises, the journal is left to the garbage collector:
  -- every batch was flushed, and what was not is merely done again by a rerun.
  local results, summary = bulk.loop(client, op, items, opts, concurrency, jnl, key_name)
  if jnl then
    local closed, err = jnl:close()
    if results and not closed then return nil, err end
  end
  return results, summary
end

--- The loop of `run`: a run made, driven to its end, its results returned.
-- @local
function bulk.loop(client, op, items, opts, concurrency, jnl, key_name)
  local run = Run.new(client, op, items, opts, concurrency, jnl, key_name)
  if run.is_insert then run:use_up_idle() end
  return run:drive()
end

return bulk
