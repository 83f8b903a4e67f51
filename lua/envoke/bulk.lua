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

-- Whether a failed attempt may have been applied. The server said no to the
-- statuses below 500 and to 503 (unavailable); a request that provably never
-- left was not applied; anything else (a cut connection, a timeout, 500, 502,
-- 504, an unreadable 2xx) may have been.
-- A success's `unapplied` (see `envoke.contact:unapplied`), worked out only
-- when read: it needs the answer decoded, which a bulk run otherwise avoids.
local SUCCESS = { __index = function(r, key)
  if key == "unapplied" and r.contact then return r.contact:unapplied() end
end }

local function maybe_applied(err)
  local status = err.status
  if status then return not (status < 500 or status == 503) end
  if err.sent == false then return false end
  return true
end

-- Only what an earlier run or a retry can change is retried by a rerun.
local FOR_GOOD = { validation = true, duplicate = true, not_found = true, protocol = true, too_large = true }

-- Calls fn on every item of the list, those appended meanwhile included, then
-- empties it: the loop keeps one list of each kind for the whole run.
local function each_once(list, fn)
  local n = 0
  while list[n + 1] ~= nil do
    n = n + 1
    fn(list[n])
  end
  for i = 1, n do list[i] = nil end
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

--- The loop of `run`.
-- @local
function bulk.loop(client, op, items, opts, concurrency, jnl, key_name)
  local caller = op .. "_all"
  local Contact = require "envoke.contact"
  local engine = client:engine()
  local keep = opts.results ~= false
  local keep_contacts = opts.contacts ~= false
  local policy = client.retry
  local on_result, on_progress = opts.on_result, opts.on_progress
  local op_opts = opts.keyfield and { keyfield = opts.keyfield } or nil
  local is_insert = op == "insert"

  local next_item, total
  if type(items) == "table" then
    local i = 0
    total = #items
    next_item = function() i = i + 1 return items[i] end
  else
    next_item, total = items, opts.total
  end

  local results = {}
  local summary = { total = 0, succeeded = 0, failed = 0, skipped = 0, reconciled = 0, unknown = 0, retried = 0 }
  local started = core.now()
  local pos, active, done, exhausted = 0, 0, 0, false
  local to_send = {}   -- jobs to submit at the next turn of the loop
  local waiting = {}   -- jobs waiting for their retry's time (job.due, in ms)
  local arrived = {}   -- handles finished during the last poll (the engine appends them: one list for the run)
  local finished = {}  -- jobs with a final outcome, for the caller's hooks
  local mismatch       -- set when the input is not the one the journal was written for

  local function finish(job, r)
    r.attempts = job.attempts
    job.result = r
    finished[#finished + 1] = job
  end

  local function succeed(job, result, reconciled)
    finish(job, setmetatable({ ok = true, contact = result, applied = true, reconciled = reconciled or nil,
                               attempts = nil }, SUCCESS))
  end

  local function fail(job, err, applied)
    if applied == nil then applied = job.maybe and "unknown" or false end
    finish(job, { ok = false, err = err, contact = job.contact, applied = applied })
  end

  local function refused(job, problem)
    local kind = client.closed and "cancelled" or "validation"
    fail(job, errors.new(kind, { message = errors.reason(problem), sent = false }), false)
  end

  local function later(job, wait_ms, phase)
    job.phase, job.due = phase, core.now() + wait_ms
    waiting[#waiting + 1] = job
  end

  local function elapsed(job) return (core.now() - job.began) / 1000 end

  -- The lookup that settles an ambiguous insert: by remote_id when it has one, else by email.
  local function lookup_plan(job)
    local body = job.plan.body
    local name = body.remote_id and body.remote_id ~= "" and "remote_id" or "email"
    return { method = "GET", idempotent = true, headers = CLOSE, finish = function(_, data) return data end,
             path = query.path("/v1/contacts", { filter = { [name] = body[name] }, sort = { id = "DESC" },
                                                 limit = 100 }) }
  end

  local function prepare(job)
    local item, built, contact = job.item, true, job.item
    if getmetatable(item) ~= Contact.metatable then built, contact = pcall(client.contact, client, item) end
    if not built then return refused(job, contact) end
    job.contact = contact
    local planned, plan, result, err = pcall(Contact.plan, contact, op, op_opts)
    if not planned then return refused(job, plan) end
    if not plan then
      if result then return succeed(job, contact) end
      return fail(job, err, false)
    end
    -- The engine retries only what never left; every other failure comes back here.
    plan.idempotent = false
    if is_insert then plan.headers = CLOSE end
    job.plan = plan
    if policy then job.began = core.now() end -- for max_elapsed, when retries are on
    if is_insert and jnl then
      if jnl:maybe_sent(job.pos) then
        job.resumed = true
        job.phase = "lookup" -- an earlier run may have sent it: look before inserting
      end
      jnl:started(job.pos)
    end
    job.phase = job.phase or "write"
    to_send[#to_send + 1] = job
  end

  local function send(job)
    local plan = job.phase == "lookup" and lookup_plan(job) or job.plan
    local sent, handle = pcall(engine.submit, engine, plan, nil, arrived)
    if not sent then
      if job.phase == "lookup" then return fail(job, errors.new("cancelled", { message = errors.reason(handle) }),
                                                 "unknown") end
      return refused(job, handle)
    end
    handle.bulk_job = job
  end

  -- A write that failed: retry, reconcile, or report.
  local function write_failed(job, err)
    local maybe = maybe_applied(err)
    if err.kind == "cancelled" then return fail(job, err, (maybe or job.maybe) and "unknown" or false) end
    if is_insert then
      if maybe or (job.resumed and err.kind == "duplicate") then
        job.cause = err
        -- A timed-out request may still be running on the server: give it a moment.
        return later(job, err.kind == "timeout" and 1000 or 0, "lookup")
      end
    elseif maybe then
      job.maybe = true
    end
    local wait = policy and err.retryable and retry.delay(policy, job.attempts, err, true, elapsed(job))
    if wait then return later(job, wait * 1000, "write") end
    fail(job, err)
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

  local function lookup_done(job, data, err)
    local cause = job.cause or err
    if err then
      cause.reconcile_error = tostring(err)
      return fail(job, cause, "unknown")
    end
    if type(data) ~= "table" then
      return fail(job, errors.new("protocol", { message = "the lookup answered something other than a list" }),
                  "unknown")
    end
    local item, count = matching(data, job.plan.body)
    if count > 1 then
      return fail(job, errors.new("duplicate", { message = ("%d contacts match the insert: cannot tell which"
        .. " one it made"):format(count), sent = true }), "unknown")
    end
    if item then
      return succeed(job, Contact.from_server(client, item), true)
    end
    -- Provably absent: the insert was never applied, sending it is safe.
    if not job.cause then job.phase = "write" return send(job) end
    local wait = policy and retry.delay(policy, job.attempts, { retryable = true, sent = false }, true,
                                        elapsed(job))
    if wait then return later(job, wait * 1000, "write") end
    fail(job, cause, false)
  end

  local function arrive(handle)
    local job = handle.bulk_job
    if job.phase == "lookup" then return lookup_done(job, handle.result, handle.err) end
    job.attempts = job.attempts + handle.attempts
    if handle.err then return write_failed(job, handle.err) end
    if job.cause then job.cause = nil end
    succeed(job, handle.result)
  end

  local function item_key(item)
    if type(item) ~= "table" then return nil end
    local ok, v = pcall(function() return item[key_name] end)
    return ok and v or nil
  end

  -- Pulls items until `concurrency` are under way; those done in an earlier run are skipped.
  local function pull()
    while not exhausted and not mismatch and active < concurrency do
      local item = next_item()
      if item == nil then exhausted = true break end
      pos = pos + 1
      summary.total = pos
      local recorded = jnl and jnl:key(pos)
      if recorded and tostring(item_key(item) or "") ~= recorded then
        mismatch = ("%s: the journal does not match the input: item %d was %s, now %s"):format(caller, pos,
          recorded, tostring(item_key(item) or "(none)"))
        break
      end
      if jnl and jnl:done(pos) then
        summary.skipped = summary.skipped + 1
        done = done + 1
        if keep then results[pos] = { skipped = true } end
        if on_progress then on_progress(done, total) end
      else
        active = active + 1
        -- The fields set later are named (nil) so that the job is made at its final size.
        prepare({ pos = pos, item = item, attempts = 0, key = jnl and item_key(item), contact = nil, plan = nil,
                  phase = nil, began = nil, result = nil })
      end
    end
  end

  local function report(job)
    local r = job.result
    active = active - 1
    done = done + 1
    if r.ok then
      summary.succeeded = summary.succeeded + 1
      if r.reconciled then summary.reconciled = summary.reconciled + 1 end
    else
      summary.failed = summary.failed + 1
      if r.applied == "unknown" then summary.unknown = summary.unknown + 1 end
    end
    if r.attempts > 1 then summary.retried = summary.retried + r.attempts - 1 end
    if jnl then
      local tag = r.ok and "ok" or (r.applied == false and FOR_GOOD[r.err.kind]) and "fail" or "again"
      jnl:record(tag, job.pos, job.key, not r.ok and r.err.kind or nil)
    end
    if on_result then on_result(job.pos, r, job.item) end
    if keep then
      if not keep_contacts then r.contact = nil end
      results[job.pos] = r
    end
    if on_progress then on_progress(done, total) end
  end

  -- Connections left idle by earlier calls must not carry an insert (libcurl
  -- would re-send it unseen if the server closed one after applying it):
  -- enough concurrent requests that close their connection use them up first.
  if is_insert then
    local sent, back = 0, 0
    for _ = 1, concurrency + 8 do
      local ok = pcall(engine.submit, engine, { method = "GET", path = "/v1/settings", idempotent = true,
                                                headers = CLOSE }, function() back = back + 1 end)
      if not ok then break end
      sent = sent + 1
    end
    while back < sent and not client.closed do engine:poll(100) end
  end

  local journal_err
  while true do
    pull()
    -- The journal has every start before any of them can leave.
    if jnl and not journal_err then
      local _, err = jnl:flush()
      journal_err = err
    end
    each_once(to_send, send)
    local next_due
    if #waiting > 0 then
      local now = core.now()
      local still = {}
      for _, job in ipairs(waiting) do
        if job.due <= now or client.closed then
          send(job)
        else
          still[#still + 1] = job
          if not next_due or job.due < next_due then next_due = job.due end
        end
      end
      waiting = still
    end
    if #finished == 0 and #arrived == 0 then
      if active == 0 and (exhausted or mismatch) then break end
      local wait = next_due and math.max(0, math.min(100, math.floor(next_due - core.now()))) or 100
      if engine.pending > 0 then
        engine:poll(wait)
      elseif next_due and wait > 0 then
        client.sleep(wait)
      end
    end
    each_once(arrived, arrive)
    -- The caller's hooks run here, outside the engine, so their errors reach the caller.
    each_once(finished, report)
  end
  if mismatch then raise(mismatch) end
  if journal_err then return nil, journal_err end
  summary.elapsed = (core.now() - started) / 1000
  return results, summary
end

return bulk
