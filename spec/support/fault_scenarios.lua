-- fault_scenarios: the sandbox's fault controls, as scenarios run once per
-- transport (the curl one in the busted process, the cosocket one inside
-- nginx) so a spec can check that both give the same outcome, and the
-- outcome spec/resilience/retry_spec.lua documents.
--
--   local scenarios = require "fault_scenarios"
--   for _, s in ipairs(scenarios.list) do
--     local outcome = scenarios.run(s, env)   -- env.client(opts), env.control(method, path, body)
--     -- compare outcome with s.expect
--   end
--
-- An outcome is plain data (it crosses JSON): ok, kind, status, retryable,
-- sent, attempts, requests and retries (counted from the logger), retry_kinds
-- (the error kind of each retry), waited_1s (every retry waited >= 1 s),
-- found (for the insert that must not be retried).

local M = {}

local list = {}
M.list = list

local function add(s) list[#list + 1] = s end

for _, status in ipairs{ 429, 502, 503, 504 } do
  add{ name = "retries an update answered " .. status .. " and succeeds", act = "update",
       fault = { kind = "status", status = status, retry_after = 0, method = "PATCH", count = 2 },
       expect = { ok = true, requests = 3, retries = 2 } }
end

add{ name = "gives up after the last retry with the last error, counting attempts", act = "update",
     fault = { kind = "status", status = 503, retry_after = 0, method = "PATCH", count = 10 },
     opts = { retries = { max = 2, base_delay = 0.01 } },
     expect = { ok = false, kind = "server", status = 503, retryable = true, attempts = 3, requests = 3 } }

add{ name = "honours Retry-After (seconds) as the least wait", act = "update",
     fault = { kind = "status", status = 429, retry_after = 1, method = "PATCH", count = 1 },
     expect = { ok = true, retries = 1, waited_1s = true, retry_kinds = { "rate_limited" } } }

for _, status in ipairs{ 500, 400, 401, 404 } do
  add{ name = "never retries a " .. status, act = "update",
       fault = { kind = "status", status = status, method = "PATCH", count = 5 },
       expect = { ok = false, status = status, retryable = false, requests = 1 } }
end

add{ name = "retries a timeout of an idempotent update", act = "update",
     fault = { kind = "delay", delay_ms = 1500, method = "PATCH", count = 1 },
     opts = { timeout = 0.3 },
     expect = { ok = true, retries = 1, retry_kinds = { "timeout" } } }

for _, kind in ipairs{ "drop", "truncate" } do
  add{ name = "retries an update whose connection was cut (" .. kind .. ")", act = "update",
       fault = { kind = kind, method = "PATCH", count = 1 },
       expect = { ok = true, retries = 1, retry_kinds = { "network" } } }
end

add{ name = "never retries an insert the server may have received", act = "insert",
     fault = { kind = "drop_after", method = "POST", count = 1 },
     expect = { ok = false, kind = "network", requests = 1, found = true } }

add{ name = "retries an insert that provably never reached the server (connection refused)", act = "insert",
     opts = { base_url = "http://127.0.0.1:9", retries = { max = 2, base_delay = 0.01 } },
     expect = { ok = false, kind = "network", sent = false, requests = 3, attempts = 3 } }

add{ name = "answers a malformed 2xx body with kind protocol, without retrying", act = "update",
     fault = { kind = "malformed", method = "PATCH", count = 1 },
     expect = { ok = false, kind = "protocol", requests = 1 } }

add{ name = "turns off with retries = 0", act = "update",
     fault = { kind = "status", status = 503, retry_after = 0, method = "PATCH", count = 1 },
     opts = { retries = 0 },
     expect = { ok = false, status = 503, requests = 1 } }

add{ name = "refuses a body over max_body as too_large, not retried", act = "update",
     opts = { max_body = 64 },
     expect = { ok = false, kind = "too_large", requests = 1 } }

local function count(events, kind)
  local n = 0
  for _, e in ipairs(events) do if e.event == kind then n = n + 1 end end
  return n
end

--- Runs one scenario on an environment; returns its outcome.
function M.run(s, env)
  local function control(method, path, body)
    local status = env.control(method, path, body)
    if status ~= 200 then error("sandbox control " .. path .. " answered " .. tostring(status)) end
  end
  control("POST", "/_sandbox/reset")
  local id
  if s.act == "update" then
    local c, err = env.client{ retries = 0 }:contact{ email = "r@example.com" }:insert()
    if not c then error("could not create the contact: " .. tostring(err)) end
    id = c.id
  end
  if s.fault then control("POST", "/_sandbox/faults", s.fault) end
  local events = {}
  local opts = { retries = { max = 3, base_delay = 0.01, max_delay = 0.05 },
                 logger = function(e) events[#events + 1] = e end }
  for k, v in pairs(s.opts or {}) do opts[k] = v end
  local c = env.client(opts)
  local result, err
  if s.act == "update" then
    result, err = c:contact{ id = id, city = "Halifax" }:save()
  else
    result, err = c:contact{ email = "once@example.com" }:insert()
  end
  local out = { ok = result ~= nil, requests = count(events, "request"), retries = count(events, "retry"),
                retry_kinds = {}, waited_1s = true }
  if err then
    out.kind, out.status, out.retryable, out.sent, out.attempts = err.kind, err.status, err.retryable, err.sent,
      err.attempts
  end
  if result and s.act == "update" and result.city ~= "Halifax" then out.ok = false end
  for _, e in ipairs(events) do
    if e.event == "retry" then
      out.retry_kinds[#out.retry_kinds + 1] = e.error.kind
      if e.wait_ms < 1000 then out.waited_1s = false end
    end
  end
  if s.act == "insert" and s.fault then
    out.found = env.client{ retries = 0 }:find{ email = "once@example.com" } ~= nil
  end
  return out
end

--- Runs the scenario with this name.
function M.run_named(name, env)
  for _, s in ipairs(list) do
    if s.name == name then return M.run(s, env) end
  end
  error("no fault scenario named " .. tostring(name))
end

return M
