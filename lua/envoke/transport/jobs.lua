--- The bookkeeping of non-blocking requests shared by the cosocket
-- transports (ngx, haproxy): ids, the running jobs, and the queue of
-- finished ones that `finished` hands out in order. The transports add the
-- host's way of running a job (a light thread, an HAProxy task).
-- @module envoke.transport.jobs
local jobs = {}

--- Gives a transport its job state.
-- @local
function jobs.init(t)
  t.next_id = 0
  t.running = {}      -- id -> job
  t.nrunning = 0
  t.done = {}         -- queue of { id, status|nil, body|err, headers }
  t.done_head, t.done_tail = 1, 0
end

--- A new running job: `{ id = id }`, counted as running.
-- @local
function jobs.start(t)
  t.next_id = t.next_id + 1
  local job = { id = t.next_id }
  t.running[job.id] = job
  t.nrunning = t.nrunning + 1
  return job
end

--- The next id, for a request that finishes at once (never running).
-- @local
function jobs.next_id(t)
  t.next_id = t.next_id + 1
  return t.next_id
end

--- Takes a job off the running list (finished, cancelled or lost).
-- @local
function jobs.forget(t, job)
  if t.running[job.id] then
    t.running[job.id] = nil
    t.nrunning = t.nrunning - 1
  end
end

--- Queues a result for `finished`: status, body, headers or nil, err.
-- @local
function jobs.push(t, id, a, b, c)
  local tail = t.done_tail + 1
  t.done_tail = tail
  t.done[tail] = { id, a, b, c }
end

--- The next finished request: id, status, body, headers | id, nil, err | nil.
-- @local
function jobs.finished(t)
  local head = t.done_head
  if head > t.done_tail then return nil end
  local r = t.done[head]
  t.done[head] = nil
  t.done_head = head + 1
  return r[1], r[2], r[3], r[4]
end

--- Drops a finished, uncollected result; true when there was one.
-- @local
function jobs.drop_done(t, id)
  for i = t.done_head, t.done_tail do
    local r = t.done[i]
    if r and r[1] == id then
      for j = i, t.done_tail - 1 do t.done[j] = t.done[j + 1] end
      t.done[t.done_tail] = nil
      t.done_tail = t.done_tail - 1
      return true
    end
  end
  return false
end

--- How many submitted requests have not been collected.
-- @local
function jobs.pending(t)
  return t.nrunning + (t.done_tail - t.done_head + 1)
end

--- Whether a finished result waits for `finished`.
-- @local
function jobs.any_done(t)
  return t.done_tail >= t.done_head
end

--- Empties the queue of finished results.
-- @local
function jobs.clear_done(t)
  t.done, t.done_head, t.done_tail = {}, 1, 0
end

--- A transport's close (idempotent): cancels what runs (through its own
-- `cancel`), drops what waits; later calls raise.
-- @local
function jobs.close(t)
  if t.closed then return end
  for id in pairs(t.running) do t:cancel(id) end
  jobs.clear_done(t)
  t.closed = true
end

return jobs
