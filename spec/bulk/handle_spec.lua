-- A bulk job is its write's engine handle (Engine:launch): the engine and
-- the bulk loop share the job's `attempts`, `due`, `state`, `result` and
-- `err`. Against a real sandbox server, with the rate limit, the engine's own
-- retries, a close mid-run, a logger and a journal: every item is reported
-- once, its `attempts` is the number of requests it made, and `applied`
-- is true to what the server holds.
local sandbox_server = require "sandbox_server"

describe("a bulk job as its own engine handle", function()
  local srv
  setup(function() srv = sandbox_server.start() end)
  teardown(function() if srv then srv:stop() end end)
  before_each(function() srv:reset() end)

  local FAST = { max = 5, base_delay = 0.001, max_delay = 0.002 }

  local function people(n, extra)
    local list = {}
    for i = 1, n do
      list[i] = { email = ("h%03d@example.com"):format(i), first_name = "N" .. i }
      for k, v in pairs(extra or {}) do list[i][k] = v end
    end
    return list
  end

  -- Stored contacts by email; each item's id path.
  local function stored()
    local by_email = {}
    for _, c in ipairs(srv:contacts()) do by_email[c.email] = c end
    return by_email
  end
  local function path_of(email) return ("/v1/contacts/%d"):format(math.floor(stored()[email].id)) end

  -- How many requests of a method the server saw, by path.
  local function requests(method)
    local count, total = {}, 0
    for _, r in ipairs(srv:log()) do
      if r.method == method then
        local path = r.path:match("^[^?]*")
        count[path] = (count[path] or 0) + 1
        total = total + 1
      end
    end
    return count, total
  end

  -- A transport object over the real (libcurl) one that answers the first
  -- `refuse[email]` submits of a write of that email as a refused connection
  -- (never sent: the engine's own retries take it), and counts every submit;
  -- `pass[email]` submits are let through first.
  local function refusing(refuse, pass)
    pass = pass or {}
    local pool = require("envoke.transport.curl").new{ base_url = srv.url, api_id = srv.api_id,
                                                       api_key = srv.api_key }
    local t = { submits = {}, refused = {}, fake = {}, n = 0 }
    function t.submit(_, method, path, body, ...)
      local key = type(body) == "table" and body.email or path
      t.submits[key] = (t.submits[key] or 0) + 1
      if t.submits[key] > (pass[key] or 0) and (refuse[key] or 0) > 0 then
        refuse[key] = refuse[key] - 1
        t.refused[key] = (t.refused[key] or 0) + 1
        t.n = t.n + 1
        t.fake[#t.fake + 1] = "refused" .. t.n
        return "refused" .. t.n
      end
      return pool:submit(method, path, body, ...)
    end
    function t.finished()
      local id = table.remove(t.fake, 1)
      if id then
        return id, nil, { kind = "network", message = "connection refused", sent = false, retryable = true }
      end
      return pool:finished()
    end
    function t.perform(_, ms)
      if #t.fake > 0 then return 0 end
      return pool:perform(ms)
    end
    function t.cancel(_, id)
      for i, f in ipairs(t.fake) do
        if f == id then table.remove(t.fake, i) return true, false end
      end
      return pool:cancel(id)
    end
    for _, name in ipairs{ "request", "pending", "close" } do
      t[name] = function(_, ...) return pool[name](pool, ...) end
    end
    return t
  end

  -- A transport object over the real one whose submit raises for a write of one email.
  local function raising(email)
    local pool = require("envoke.transport.curl").new{ base_url = srv.url, api_id = srv.api_id,
                                                       api_key = srv.api_key }
    local t = {}
    function t.submit(_, method, path, body, ...)
      if type(body) == "table" and body.email == email then error("the transport refused " .. email) end
      return pool:submit(method, path, body, ...)
    end
    for _, name in ipairs{ "request", "perform", "finished", "cancel", "pending", "close" } do
      t[name] = function(_, ...) return pool[name](pool, ...) end
    end
    return t
  end

  -- Every item reported exactly once, in its place.
  local function once_each(n, seen)
    for i = 1, n do assert.are.equal(1, seen[i], "item " .. i .. " reported " .. tostring(seen[i]) .. " times") end
  end

  describe("with the client's rate limit", function()
    it("says applied = false and sent = false for a save whose 503'd retry was cancelled while rate-limited",
      function()
      local c0 = srv:client()
      assert(c0:insert_all(people(2)))
      local a, b = path_of("h001@example.com"), path_of("h002@example.com")
      srv:fault{ kind = "status", status = 503, retry_after = 0, method = "PATCH", path = a, count = 2 }
      srv:fault{ kind = "delay", delay_ms = 150, method = "PATCH", path = b }
      -- Three requests a second: a's two 503'd attempts and b's use the bucket
      -- up, so a's third waits ~330 ms in the engine's queue; b answers at 150 ms.
      local client = srv:client{ rate_limit = 3, retries = FAST }
      local items = {}
      for i, email in ipairs{ "h001@example.com", "h002@example.com" } do
        items[i] = { id = math.floor(stored()[email].id), city = "Gander" }
      end
      local results, summary = client:save_all(items, { concurrency = 2,
        on_result = function(i) if i == 2 then client:close() end end })
      local r = results[1]
      assert.is_false(r.ok)
      assert.are.equal("cancelled", r.err.kind)
      assert.are.equal(2, r.attempts)
      assert.are.equal(2, requests("PATCH")[a])
      -- Both attempts were refused by the server (503), the third never left.
      assert.are_not.equal("Gander", stored()["h001@example.com"].city)
      assert.is_false(r.err.sent)
      assert.are.equal(false, r.applied)
      assert.is_true(results[2].ok)
      assert.are.same({ 1, 1, 0, 1 }, { summary.succeeded, summary.failed, summary.unknown, summary.retried })
    end)

    it("accounts for every item once, its attempts the requests it made, under 503s and 429s", function()
      local n = 30
      assert(srv:client():insert_all(people(n)))
      local paths = {}
      for i = 1, n do paths[i] = path_of(("h%03d@example.com"):format(i)) end
      for i = 1, n, 3 do
        srv:fault{ kind = "status", status = i % 2 == 0 and 429 or 503, retry_after = 0, method = "PATCH",
                   path = paths[i], count = 2 }
      end
      srv:clear_log()
      -- 20 a second: a third of the requests wait for the bucket in the engine's queue.
      local client = srv:client{ rate_limit = 20, retries = FAST }
      local items = {}
      for i = 1, n do items[i] = { id = tonumber(paths[i]:match("%d+$")), city = "Moncton" } end
      local seen = {}
      local results, summary = client:save_all(items, { concurrency = 6,
        on_result = function(i) seen[i] = (seen[i] or 0) + 1 end })
      once_each(n, seen)
      local count, total = requests("PATCH")
      local attempts = 0
      for i = 1, n do
        local r = results[i]
        assert.is_true(r.ok, i .. ": " .. tostring(r.err))
        assert.is_nil(r.err)
        assert.are.equal("Moncton", r.contact.city)
        assert.are.equal(count[paths[i]], r.attempts, "item " .. i)
        attempts = attempts + r.attempts
      end
      assert.are.equal(total, attempts)
      assert.are.same({ n, n, 0, total - n }, { summary.total, summary.succeeded, summary.failed, summary.retried })
      assert.are.equal(0, client:pending())
    end)
  end)

  describe("a write the transport refuses once the rate limit lets it go", function()
    it("fails its item alone in a bulk run, unsent and with no attempt, the others go on", function()
      local n = 30
      -- 20 a second: item 25 waits in the engine's queue and is refused from poll.
      local client = srv:client{ transport = raising("h025@example.com"), rate_limit = 20, retries = FAST }
      local results, summary = client:upsert_all(people(n, { city = "Corner Brook" }), { concurrency = 4 })
      local r = results[25]
      assert.is_false(r.ok)
      assert.are.equal("validation", r.err.kind)
      assert.is_false(r.err.sent)
      assert.are.equal(false, r.applied)
      assert.are.equal(0, r.attempts)
      assert.matches("the transport refused h025@example.com", r.err.message, 1, true)
      assert.are.same({ n, n - 1, 1, 0 }, { summary.total, summary.succeeded, summary.failed, summary.retried })
      assert.are.equal(n - 1, #srv:contacts())
      assert.are.equal(0, client:pending())
    end)

    it("ends its own async call with the refusal and strands none of the others", function()
      local client = srv:client{ transport = raising("h022@example.com"), rate_limit = 20 }
      local seen, list = {}, people(25)
      for i = 1, 25 do
        client:contact(list[i]):insert_async(function(c, err) seen[i] = { c = c, err = err } end)
      end
      assert.is_true(client:drain(5000))
      for i = 1, 25 do
        assert.is_table(seen[i], "call " .. i .. " never ended")
        if i == 22 then
          assert.are.equal("validation", seen[i].err.kind)
          assert.is_false(seen[i].err.sent)
          assert.are.equal(0, seen[i].err.attempts)
        else
          assert.is_nil(seen[i].err)
        end
      end
      assert.are.equal(24, #srv:contacts())
    end)
  end)

  describe("closed from a hook mid-run", function()
    it("never says applied = false of a save applied before its retry was cancelled", function()
      local client0 = srv:client()
      assert(client0:insert_all(people(2)))
      local a, b = path_of("h001@example.com"), path_of("h002@example.com")
      -- a's first attempt is applied but unanswered; its second gets a 429 that
      -- holds its third back a second, in the bulk loop's own queue.
      srv:fault{ kind = "drop_after", method = "PATCH", path = a }
      srv:fault{ kind = "status", status = 429, retry_after = 1, method = "PATCH", path = a, count = 5 }
      srv:fault{ kind = "delay", delay_ms = 300, method = "PATCH", path = b }
      local client = srv:client{ retries = FAST }
      local items = {
        { id = tonumber(a:match("%d+$")), city = "Gander" }, { id = tonumber(b:match("%d+$")), city = "Gander" } }
      local results, summary = client:save_all(items, { concurrency = 2,
        on_result = function(i) if i == 2 then client:close() end end })
      assert.are.equal("Gander", stored()["h001@example.com"].city) -- the first attempt was applied
      local r = results[1]
      assert.is_false(r.ok)
      assert.are.equal("cancelled", r.err.kind)
      assert.are.equal("unknown", r.applied)
      assert.are.equal(2, r.attempts)
      assert.are.same({ 1, 1, 1 }, { summary.succeeded, summary.failed, summary.unknown })
    end)

    it("reports every item once, applied true to the server, with writes in flight, rate-limited and retrying",
      function()
      local n = 24
      assert(srv:client():insert_all(people(n)))
      local paths, items = {}, {}
      for i = 1, n do
        paths[i] = path_of(("h%03d@example.com"):format(i))
        items[i] = { id = tonumber(paths[i]:match("%d+$")), city = "Truro" }
      end
      for i = 1, n, 4 do
        srv:fault{ kind = "status", status = 503, retry_after = 0, method = "PATCH", path = paths[i], count = 3 }
      end
      for i = 2, n, 4 do srv:fault{ kind = "delay", delay_ms = 400, method = "PATCH", path = paths[i] } end
      for i = 3, n, 8 do srv:fault{ kind = "drop_after", method = "PATCH", path = paths[i] } end
      srv:clear_log()
      local client = srv:client{ rate_limit = 40, retries = FAST }
      local seen = {}
      local results, summary = client:save_all(items, { concurrency = 8,
        on_result = function(i) seen[i] = (seen[i] or 0) + 1 end,
        on_progress = function(done) if done == 6 then client:close() end end })
      once_each(n, seen)
      local by_email, count = stored(), requests("PATCH")
      local tally = { succeeded = 0, failed = 0, unknown = 0 }
      for i = 1, n do
        local r = results[i]
        local applied = by_email[("h%03d@example.com"):format(i)].city == "Truro"
        if r.ok then
          tally.succeeded = tally.succeeded + 1
          assert.is_true(applied, "item " .. i)
        else
          tally.failed = tally.failed + 1
          if r.applied == "unknown" then tally.unknown = tally.unknown + 1 end
          if applied then assert.are.equal("unknown", r.applied, "item " .. i .. " was applied") end
          if r.applied == false then assert.is_false(applied, "item " .. i) end
        end
        -- A cancelled attempt in flight counts, though it may not have reached the server yet.
        local cancelled = not r.ok and r.err.kind == "cancelled" and 1 or 0
        assert.is_true(r.attempts <= (count[paths[i]] or 0) + cancelled,
          "item " .. i .. ": more attempts than requests")
      end
      assert.is_true(tally.failed > 0, "the close cancelled nothing")
      assert.are.same(tally, { succeeded = summary.succeeded, failed = summary.failed, unknown = summary.unknown })
      assert.are.equal(n, summary.total)
      assert.are.equal(0, client:pending())
    end)
  end)

  describe("with the engine's own retries (a connection refused before sending)", function()
    for _, rate in ipairs{ false, 50 } do
      it(("counts every attempt once, its own and the bulk loop's%s"):format(rate and ", rate-limited" or ""),
        function()
        local n = 12
        local refuse = {}
        for i = 1, n, 2 do refuse[("h%03d@example.com"):format(i)] = 2 end
        for i = 1, n, 3 do
          srv:fault{ kind = "status", status = 503, retry_after = 0, method = "POST", path = "/v1/contacts",
                     after = i, count = 1 }
        end
        local t = refusing(refuse)
        local client = srv:client{ transport = t, retries = FAST, rate_limit = rate or nil }
        local results, summary = client:upsert_all(people(n, { city = "Sydney" }), { concurrency = 4 })
        local sent, all = requests("POST"), 0
        for i = 1, n do
          local email, r = ("h%03d@example.com"):format(i), results[i]
          assert.is_true(r.ok, i .. ": " .. tostring(r.err))
          assert.are.equal(t.submits[email], r.attempts, email)
          assert.is_true(r.attempts <= FAST.max + 1)
          all = all + r.attempts
        end
        assert.are.equal(all - n, summary.retried)
        local refused = 0
        for _, k in pairs(t.refused) do refused = refused + k end
        assert.are.equal(12, refused)
        assert.are.equal(all - refused, sent["/v1/contacts"]) -- the use_up_idle GETs are not POSTs
      end)
    end

    it("cancels as not sent an insert_async whose only attempts were refused connections", function()
      -- Two refused attempts use the bucket (2 a second) up: the third waits in the engine's queue.
      local t = refusing{ ["h001@example.com"] = 2 }
      local client = srv:client{ transport = t, retries = FAST, rate_limit = 2 }
      local seen
      local handle = client:contact(people(1)[1]):insert_async(function(_, err) seen = err end)
      local deadline = os.time() + 5
      while not (handle.attempts == 2 and handle.state == "waiting") and os.time() < deadline do client:poll(10) end
      assert.are.equal("waiting", handle.state)
      client:close()
      assert.are.equal("cancelled", seen.kind)
      assert.is_false(seen.sent)
      assert.are.equal(2, seen.attempts)
      assert.are.same({}, srv:contacts())
    end)

    it("stops at the policy's max counting the engine's attempts and the bulk loop's together", function()
      -- Two 503s (the bulk loop retries) and then refused connections (the
      -- engine retries): with max = 3 the item gets 4 attempts in all, not more.
      srv:fault{ kind = "status", status = 503, retry_after = 0, method = "POST", path = "/v1/contacts", count = 2 }
      local t = refusing({ ["h001@example.com"] = 10 }, { ["h001@example.com"] = 2 })
      local client = srv:client{ transport = t, retries = { max = 3, base_delay = 0.001, max_delay = 0.002 } }
      local results, summary = client:upsert_all(people(1, { city = "Sydney" }))
      local r = results[1]
      assert.is_false(r.ok)
      assert.are.equal("network", r.err.kind)
      assert.are.equal(4, r.attempts)
      assert.are.equal(4, t.submits["h001@example.com"])
      assert.are.equal(2, requests("POST")["/v1/contacts"])
      assert.are.equal(false, r.applied) -- 503, 503, and two never sent
      assert.are.equal(3, summary.retried)
    end)
  end)

  it("logs one request and one answer per attempt, numbered 1, 2, ... across the bulk loop's retries", function()
    assert(srv:client():insert_all(people(4)))
    local a = path_of("h002@example.com")
    srv:fault{ kind = "status", status = 503, retry_after = 0, method = "PATCH", path = a, count = 2 }
    local events = {}
    local client = srv:client{ retries = FAST, rate_limit = 100, logger = function(e) events[#events + 1] = e end }
    local items = {}
    for i = 1, 4 do items[i] = { id = tonumber(path_of(("h%03d@example.com"):format(i)):match("%d+$")), city = "X" } end
    local results, summary = client:save_all(items, { concurrency = 2 })
    local per = {}
    for _, e in ipairs(events) do
      per[e.path] = per[e.path] or { request = {}, response = 0, error = 0, retry = 0 }
      local p = per[e.path]
      if e.event == "request" then p.request[#p.request + 1] = e.attempt
      elseif e.event == "response" or e.event == "error" or e.event == "retry" then p[e.event] = p[e.event] + 1 end
      if e.event == "response" or e.event == "error" then assert.is_number(e.elapsed_ms) end
    end
    assert.are.same({ request = { 1, 2, 3 }, response = 1, error = 2, retry = 0 }, per[a])
    for i = 1, 4 do
      local p = per[items[i].id and ("/v1/contacts/%d"):format(items[i].id)]
      assert.are.equal(results[i].attempts, #p.request)
      assert.are.equal(results[i].attempts, p.response + p.error)
    end
    assert.are.equal(2, summary.retried)
  end)

  it("reconciles a dropped insert, resumed from the journal by a lookup of its own, without confusing handles",
    function()
    local path = os.tmpname()
    os.remove(path)
    local items = people(6)
    -- The first run: items 2 and 5 are made but unanswered (reconciled by a
    -- lookup); the run is cut short by a hook that raises after 3 results.
    srv:fault{ kind = "drop_after", method = "POST", path = "/v1/contacts", after = 1 }
    srv:fault{ kind = "drop_after", method = "POST", path = "/v1/contacts", after = 3 }
    local client = srv:client{ retries = FAST }
    local got = {}
    local ok = pcall(client.insert_all, client, items, { journal = path, concurrency = 2,
      on_result = function(i, r)
        got[i] = r
        if #srv:contacts() >= 3 then error("stop") end
      end })
    assert.is_false(ok)
    -- The rerun: what was done is skipped, what may have been sent is looked up first.
    local results, summary = srv:client{ retries = FAST }:insert_all(items, { journal = path, concurrency = 2 })
    os.remove(path)
    local by_email, total = stored(), #srv:contacts()
    assert.are.equal(6, total)
    for i = 1, 6 do
      local r = results[i]
      assert.is_true(r.skipped or r.ok, i .. ": " .. tostring(r.err))
      if r.ok then
        assert.is_nil(r.err)
        assert.are.equal(items[i].email, r.contact.email)
        assert.are.equal(by_email[items[i].email].id, r.contact.id)
      end
    end
    assert.are.equal(6, summary.succeeded + summary.skipped)
    for _, r in pairs(got) do
      if r.ok then assert.are.equal(by_email[r.contact.email].id, r.contact.id) end
    end
  end)

  it("leaves no failed attempt's error on a later success, and reports the server's contact", function()
    srv:settings{ allow_duplicate_emails = true }
    local refuse = { ["h001@example.com"] = 1 }
    srv:fault{ kind = "status", status = 503, retry_after = 0, method = "POST", path = "/v1/contacts", count = 1 }
    srv:fault{ kind = "drop_after", method = "POST", path = "/v1/contacts", after = 2 }
    local client = srv:client{ transport = refusing(refuse), retries = FAST }
    local results, summary = client:insert_all(people(4, { city = "Halifax" }), { concurrency = 1 })
    local by_email = stored()
    for i = 1, 4 do
      local r = results[i]
      assert.is_true(r.ok, i .. ": " .. tostring(r.err))
      assert.is_nil(r.err)
      assert.are.equal(true, r.applied)
      assert.are.equal("Halifax", r.contact.city)
      assert.are.equal(by_email[r.contact.email].id, r.contact.id)
      assert.is_nil(r.result)
      assert.is_nil(r.outcome)
    end
    assert.are.equal(4, #srv:contacts())
    assert.are.equal(1, summary.reconciled)
  end)
end)
