--- Many saves at once: `client:save_all`, `insert_all`, `upsert_all`.
--
-- Envoke has no batch endpoint, so throughput comes from keeping
-- `concurrency` requests in flight over the pool's reused connections, with
-- the client's retries and rate limit. Every input comes back accounted for,
-- in input order; `on_result` is called as each one finishes, so a caller can
-- journal progress and resume after an interruption.
-- @module envoke.bulk
local core = require "envoke.core"
local errors = require "envoke.errors"
local raise = errors.raise

local bulk = {}

local OPTIONS = { concurrency = "number", keyfield = "string", on_result = "function", on_progress = "function" }

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
  return opts, c
end

--- Runs one operation over every item.
-- @tparam envoke.client client
-- @tparam string op `save`, `insert` or `upsert`
-- @tparam table items contacts (from `client:contact`) or plain field tables
-- @tparam[opt] table opts `concurrency` (default 8), `keyfield` (save, upsert),
--   `on_result(i, result)` as each finishes, `on_progress(done, total)`
-- @treturn table results: `results[i] = { ok = bool, contact = c, err = err, attempts = n }`
-- @treturn table summary: `{ total, succeeded, failed, retried, elapsed }` (elapsed in seconds)
-- @local
function bulk.run(client, op, items, opts)
  local caller = op .. "_all"
  client:check_open()
  if type(items) ~= "table" then raise("%s: items must be a list", caller) end
  local concurrency
  opts, concurrency = check_options(opts, caller)
  local Contact = require "envoke.contact"
  local engine = client:engine()
  local total = #items
  local results = {}
  local summary = { total = total, succeeded = 0, failed = 0, retried = 0 }
  local started = core.now()
  local next_item, active, done = 1, 0, 0
  local finished = {} -- indexes finished since the caller's hooks last ran
  local op_opts = opts.keyfield and { keyfield = opts.keyfield } or nil

  local function record(i, contact, err, attempts)
    results[i] = { ok = err == nil, contact = contact, err = err, attempts = attempts }
    finished[#finished + 1] = i
  end

  -- One callback for every item: which item a handle carries is on the handle.
  local function item_done(_, err, handle)
    active = active - 1
    record(handle.bulk_index, handle.bulk_contact, err, handle.attempts)
  end

  local function refused(i, contact, problem)
    local kind = client.closed and "cancelled" or "validation"
    return record(i, contact, errors.new(kind, { message = errors.reason(problem), sent = false }), 0)
  end

  -- Starts item i; a bad item (setter, consent rule, encoding) becomes its own error, never a raise.
  local function start(i)
    local item = items[i]
    local ok, contact = pcall(function()
      if getmetatable(item) == Contact.metatable then return item end
      return client:contact(item)
    end)
    if not ok then return refused(i, nil, contact) end
    local built, plan, result, err = pcall(Contact.plan, contact, op, op_opts)
    if not built then return refused(i, contact, plan) end
    if not plan then return record(i, result and contact, err, 0) end
    local sent, handle = pcall(engine.submit, engine, plan, item_done)
    if not sent then return refused(i, contact, handle) end
    active = active + 1
    handle.bulk_index, handle.bulk_contact = i, contact
  end

  while done < total do
    while active < concurrency and next_item <= total do
      next_item = next_item + 1
      start(next_item - 1)
    end
    if #finished == 0 then engine:poll(100) end
    -- The caller's hooks run here, outside the engine, so their errors reach the caller.
    local batch = finished
    finished = {}
    for _, i in ipairs(batch) do
      local r = results[i]
      done = done + 1
      if r.ok then summary.succeeded = summary.succeeded + 1 else summary.failed = summary.failed + 1 end
      if r.attempts > 1 then summary.retried = summary.retried + r.attempts - 1 end
      if opts.on_result then opts.on_result(i, r) end
      if opts.on_progress then opts.on_progress(done, total) end
    end
  end
  summary.elapsed = (core.now() - started) / 1000
  return results, summary
end

return bulk
