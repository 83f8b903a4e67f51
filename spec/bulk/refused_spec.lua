-- A bulk write the transport refuses (it raises at submit) is reported for
-- its item alone: never sent, no attempt counted, the other items go on.
local envoke = require "envoke"

-- A transport object (the `transport` option's table form) over the
-- in-process one, refusing the writes of one email.
local function refusing(email)
  local inner = require("envoke.transport.in_process").new{ base_url = "http://127.0.0.1" }
  local t = {}
  function t.submit(_, method, path, body, ...)
    if type(body) == "table" and body.email == email then error("the transport refused " .. email) end
    return inner:submit(method, path, body, ...)
  end
  for _, name in ipairs{ "request", "perform", "finished", "cancel", "pending", "close", "server" } do
    t[name] = function(_, ...) return inner[name](inner, ...) end
  end
  return t
end

describe("a bulk write the transport refuses", function()
  local function run(op, retries)
    local client = envoke.new{ transport = refusing("p2@example.com"), retries = retries }
    local items = {}
    for i = 1, 3 do items[i] = { email = ("p%d@example.com"):format(i), city = "Toronto" } end
    return client[op .. "_all"](client, items, { concurrency = 2 })
  end

  for _, case in ipairs{ { "upsert", 0 }, { "upsert", 3 }, { "insert", 0 }, { "insert", 3 } } do
    local op, retries = case[1], case[2]
    it(("fails its own item, unsent and with no attempt: %s_all, retries = %d"):format(op, retries), function()
      local results, summary = run(op, retries)
      local r = results[2]
      assert.is_false(r.ok)
      assert.equal("validation", r.err.kind)
      assert.is_false(r.err.sent)
      assert.is_false(r.applied)
      assert.equal(0, r.attempts)
      assert.matches("the transport refused p2@example.com", r.err.message, 1, true)
      assert.is_true(results[1].ok)
      assert.is_true(results[3].ok)
      assert.equal(1, results[1].attempts)
      assert.same({ 3, 2, 1, 0 }, { summary.total, summary.succeeded, summary.failed, summary.retried })
    end)
  end

  it("logs no request for a write the transport refused", function()
    local events = {}
    local client = envoke.new{ transport = refusing("p2@example.com"), retries = 0,
                               logger = function(e) events[#events + 1] = e end }
    local _, summary = client:upsert_all({ { email = "p1@example.com" }, { email = "p2@example.com" } })
    assert.same({ 1, 1 }, { summary.succeeded, summary.failed })
    local requests = {}
    for _, e in ipairs(events) do
      if e.event == "request" then requests[#requests + 1] = e end
    end
    assert.equal(1, #requests)
    assert.equal(1, requests[1].attempt)
  end)
end)
