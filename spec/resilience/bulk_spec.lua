-- Bulk saves over real HTTP: every input comes back accounted for, in order,
-- with faults, invalid items, retries and an interrupted run.
local sandbox_server = require "sandbox_server"

describe("bulk", function()
  local srv, client
  setup(function() srv = sandbox_server.start() end)
  teardown(function() if srv then srv:stop() end end)
  before_each(function()
    srv:reset()
    client = srv:client{ retries = { max = 4, base_delay = 0.01 } }
  end)

  local function people(n, extra)
    local list = {}
    for i = 1, n do
      list[i] = { email = ("b%03d@example.com"):format(i), first_name = "N" .. i }
      for k, v in pairs(extra or {}) do list[i][k] = v end
    end
    return list
  end

  it("inserts many concurrently, one result per input in input order, with progress", function()
    local progress, seen = {}, {}
    local results, summary = client:insert_all(people(50), {
      concurrency = 8,
      on_progress = function(done, total) progress[#progress + 1] = { done, total } end,
      on_result = function(i, r) seen[#seen + 1] = i assert.is_true(r.ok) end,
    })
    assert.are.equal(50, #results)
    for i, r in ipairs(results) do
      assert.is_true(r.ok, tostring(r.err))
      assert.are.equal(("b%03d@example.com"):format(i), r.contact.email)
      assert.is_number(r.contact.id)
    end
    assert.are.same({ total = 50, succeeded = 50, failed = 0, retried = 0 },
      { total = summary.total, succeeded = summary.succeeded, failed = summary.failed, retried = summary.retried })
    assert.is_number(summary.elapsed)
    assert.are.equal(50, #progress)
    assert.are.same({ 50, 50 }, progress[50])
    table.sort(seen)
    for i = 1, 50 do assert.are.equal(i, seen[i]) end
    assert.are.equal(50, #srv:contacts())
  end)

  it("accounts for every item when some are invalid, missing or duplicates", function()
    assert(client:contact{ email = "b002@example.com" }:insert())
    local items = people(5)
    items[3] = { email = "b003@example.com", citty = "typo" }            -- unknown field
    items[4] = { email = "b004@example.com", consent_status = "Express" } -- no description
    local results, summary = client:insert_all(items)
    assert.are.equal(5, #results)
    assert.is_true(results[1].ok)
    assert.are.equal("duplicate", results[2].err.kind)
    assert.are.equal("validation", results[3].err.kind)
    assert.truthy(results[3].err.message:find("citty", 1, true))
    assert.is_nil(results[3].contact) -- never built (nil, not false: a reused job's field must not show)
    assert.are.equal("validation", results[4].err.kind)
    assert.truthy(results[4].err.message:find("needs a description", 1, true))
    assert.is_true(results[5].ok)
    assert.are.equal(2, summary.succeeded)
    assert.are.equal(3, summary.failed)
  end)

  it("saves by email, retrying throttled and dropped requests until every one lands", function()
    assert(client:insert_all(people(20)))
    srv:fault{ kind = "status", status = 429, retry_after = 0, method = "PATCH", count = 5 }
    srv:fault{ kind = "drop", method = "PATCH", count = 3 }
    local results, summary = client:save_all(people(20, { city = "Moncton" }), { keyfield = "email", concurrency = 4 })
    for i, r in ipairs(results) do
      assert.is_true(r.ok, i .. ": " .. tostring(r.err))
      assert.are.equal("Moncton", r.contact.city)
    end
    assert.are.equal(20, summary.succeeded)
    -- Every 429 is retried by the client. A drop on a reused keep-alive
    -- connection is re-sent by libcurl itself before the client sees it, so
    -- each drop costs the client at most one retry.
    assert.is_true(summary.retried >= 5 and summary.retried <= 8, "retried " .. summary.retried)
    local patches = 0
    for _, r in ipairs(srv:log()) do if r.method == "PATCH" then patches = patches + 1 end end
    assert.are.equal(28, patches) -- 20 saves + 8 faulty answers: every fault was used up
    for _, c in ipairs(srv:contacts()) do assert.are.equal("Moncton", c.city) end
  end)

  it("upserts: inserts the new and updates the known", function()
    assert(client:insert_all(people(3)))
    local results, summary = client:upsert_all(people(6, { company = "Acme" }))
    assert.are.equal(6, summary.succeeded)
    for _, r in ipairs(results) do assert.are.equal("Acme", r.contact.company) end
    assert.are.equal(6, #srv:contacts())
  end)

  it("reports not_found per item and carries on", function()
    local results, summary = client:save_all(people(3), { keyfield = "email" })
    assert.are.equal(3, summary.failed)
    for _, r in ipairs(results) do assert.are.equal("not_found", r.err.kind) end
  end)

  it("leaves a journal of everything finished when the caller stops mid-run", function()
    local journal = {}
    local ok, problem = pcall(client.insert_all, client, people(30), {
      concurrency = 4,
      on_result = function(i, r)
        journal[#journal + 1] = { i = i, id = r.contact.id }
        if #journal == 10 then error("interrupted") end
      end,
    })
    assert.is_false(ok)
    assert.truthy(tostring(problem):find("interrupted", 1, true))
    assert.are.equal(10, #journal)
    -- Every journalled item really is on the server.
    local stored = {}
    for _, c in ipairs(srv:contacts()) do stored[c.id] = true end
    for _, j in ipairs(journal) do assert.is_true(stored[j.id]) end
  end)

  it("refuses bad options", function()
    assert.has_error(function() client:save_all(people(1), { concurrency = 0 }) end,
      "envoke: save_all: option 'concurrency' must be an integer from 1 to 256")
    assert.has_error(function() client:save_all(people(1), { parallel = 2 }) end,
      "envoke: save_all: unknown option 'parallel'")
  end)
end)
