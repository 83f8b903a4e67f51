-- The sandbox's webhook delivery, in-process: deliveries go through a
-- function the test gives (`Sandbox.new{ deliver = fn }`), so every rule
-- shows without a socket: which events fire which hooks, the JSON array,
-- the retry 600 s of sandbox clock later, the 410 that drops a hook.
local envoke = require "envoke"
local Sandbox = require "envoke.sandbox"
local webhook = require "envoke.webhook"
local cjson = require "cjson"

describe("sandbox webhook delivery (in-process)", function()
  local server, client, posted, answer

  local function control(method, path, body)
    local status, _, raw = server:handle(method, path, "", {}, body and cjson.encode(body) or "")
    assert(status == 200, raw)
    return cjson.decode(raw).result_data
  end

  before_each(function()
    posted, answer = {}, function() return 200 end
    server = Sandbox.new{ deliver = function(request, done)
      posted[#posted + 1] = request
      return answer(request, done)
    end }
    client = envoke.new{ transport = "in_process", sandbox = { server = server } }
  end)

  local function records(i)
    return assert(webhook.parse(posted[i].body))
  end

  it("posts a new contact's record, as a JSON array, to the hook's URL", function()
    local hook = assert(client.hooks:create{ type = "new_contact", url = "https://crm.example.com/in?secret=s" })
    local c = assert(client:contact{ email = "jane@example.com", first_name = "Jane" }:insert())
    assert.are.equal(1, #posted)
    assert.are.equal("https://crm.example.com/in?secret=s", posted[1].url)
    assert.are.equal("application/json", posted[1].headers["content-type"])
    assert.are.equal(hook.id, posted[1].hook_id)
    assert.truthy(posted[1].body:find("^%["))
    local r = records(1)[1]
    assert.are.equal(c.id, r.id)
    assert.are.equal("Jane", r.first_name)
    assert.are.equal("Not provided", r.consent_status)
    assert.truthy(r.date_created:find("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"))
    local d = control("GET", "/_sandbox/deliveries")
    assert.are.equal("delivered", d[1].state)
    assert.are.equal(200, d[1].attempts[1].status)
  end)

  it("fires consent_change only when an existing contact's status changes, with the old status", function()
    assert(client.hooks:create{ type = "consent_change", url = "http://127.0.0.1:9/consent" })
    local c = assert(client:contact{ email = "a@example.com" }:insert())
    assert.are.equal(0, #posted)
    assert(client:contact{ id = c.id }:set("city", "Ottawa"):save())
    assert.are.equal(0, #posted)
    assert(client:contact{ email = "a@example.com" }:consent("Express", "form"):save{ keyfield = "email" })
    assert.are.equal(1, #posted)
    local r = records(1)[1]
    assert.are.equal("Express", r.consent_status)
    assert.are.equal("Not provided", r.previous_consent_status)
    assert(client:contact{ id = c.id }:consent("Revoked", "asked"):save())
    assert.are.equal("Revoked", records(2)[1].consent_status)
  end)

  it("fires api_submission and submission for every API write, with the submission's fields", function()
    assert(client.hooks:create{ type = "api_submission", url = "http://127.0.0.1:9/api" })
    assert(client.hooks:create{ type = "submission", url = "http://127.0.0.1:9/any" })
    assert(client:contact{ email = "s@example.com", remote_id = "R1" }:upsert())
    assert.are.equal(2, #posted)
    local r = records(1)[1]
    assert.are.equal("api", r.submission_type)
    assert.are.equal("R1", r.contact_remote_id)
    assert.is_true(r.contact_created)
    assert.is_number(r.contact_id)
    assert.are.equal("s@example.com", r.email)
    assert.are.equal("http://127.0.0.1:9/any", posted[2].url)
  end)

  it("delivers only records matching a hook's filter", function()
    assert(client.hooks:create{ type = "new_contact", url = "http://127.0.0.1:9/ca", filter = { country = "CA" } })
    assert(client:contact{ email = "us@example.com", country = "US" }:insert())
    assert(client:contact{ email = "ca@example.com", country = "CA" }:insert())
    assert.are.equal(1, #posted)
    assert.are.equal("ca@example.com", records(1)[1].email)
  end)

  it("tries a failed delivery once more, 600 s of sandbox clock later, then gives up", function()
    answer = function() return 503 end
    assert(client.hooks:create{ type = "new_contact", url = "http://127.0.0.1:9/down" })
    assert(client:contact{ email = "r@example.com" }:insert())
    assert.are.equal(1, #posted)
    control("POST", "/_sandbox/clock", { advance = 599 })
    assert.are.equal(1, #posted)
    local d = control("GET", "/_sandbox/deliveries")[1]
    assert.are.equal("retry", d.state)
    control("POST", "/_sandbox/clock", { advance = 1 })
    assert.are.equal(2, #posted)
    assert.are.equal(posted[1].body, posted[2].body)
    d = control("GET", "/_sandbox/deliveries")[1]
    assert.are.equal("failed", d.state)
    assert.are.same({ 503, 503 }, { d.attempts[1].status, d.attempts[2].status })
    control("POST", "/_sandbox/clock", { advance = 3600 })
    assert.are.equal(2, #posted)
  end)

  it("counts a raising or refused delivery as failed and retries it", function()
    local calls = 0
    answer = function()
      calls = calls + 1
      if calls == 1 then error("connection refused") end
      return 204
    end
    assert(client.hooks:create{ type = "new_contact", url = "http://127.0.0.1:9/x" })
    assert(client:contact{ email = "e@example.com" }:insert())
    control("POST", "/_sandbox/clock", { advance = 600 })
    local d = control("GET", "/_sandbox/deliveries")[1]
    assert.are.equal("delivered", d.state)
    assert.truthy(d.attempts[1].error:find("connection refused", 1, true))
  end)

  it("drops the hook when the receiver answers 410", function()
    answer = function() return 410 end
    local hook = assert(client.hooks:create{ type = "new_contact", url = "http://127.0.0.1:9/gone" })
    assert(client:contact{ email = "g1@example.com" }:insert())
    assert.are.same({}, assert(client.hooks:list()))
    assert.are.equal("not_found", select(2, client.hooks:get(hook.id)).kind)
    assert(client:contact{ email = "g2@example.com" }:insert())
    assert.are.equal(1, #posted)
    assert.are.equal("gone", control("GET", "/_sandbox/deliveries")[1].state)
  end)

  it("takes an answer that comes later (an asynchronous host)", function()
    local later = {}
    answer = function(_, done) later[#later + 1] = done end
    assert(client.hooks:create{ type = "new_contact", url = "http://127.0.0.1:9/slow" })
    assert(client:contact{ email = "l@example.com" }:insert())
    assert.are.equal("sending", control("GET", "/_sandbox/deliveries")[1].state)
    later[1](200)
    later[1](500) -- a second answer changes nothing
    assert.are.equal("delivered", control("GET", "/_sandbox/deliveries")[1].state)
  end)

  it("batches a message's email_send events in one delivery", function()
    control("POST", "/_sandbox/contacts", {
      { email = "a@example.com", consent_status = "Express", consent_description = "f" },
      { email = "b@example.com", consent_status = "Express", consent_description = "f" } })
    assert(client.hooks:create{ type = "email_send", url = "http://127.0.0.1:9/sends" })
    local r = assert(client:send{ name = "News", subject = "News of the week", sender = "A B <a@example.com>",
                                  recipients = { "a@example.com", "b@example.com" }, html = "<p>n</p>" })
    assert.are.equal(1, #posted)
    local batch = records(1)
    assert.are.equal(2, #batch)
    assert.are.equal(r.id, batch[1].message_id)
    assert.are.equal("email_send", batch[2].event)
  end)

  it("keeps deliveries waiting, listed, when the host gives no deliver function", function()
    local quiet = Sandbox.new()
    local c = envoke.new{ transport = "in_process", sandbox = { server = quiet } }
    assert(c.hooks:create{ type = "new_contact", url = "http://127.0.0.1:9/none" })
    assert(c:contact{ email = "q@example.com" }:insert())
    local _, _, raw = quiet:handle("GET", "/_sandbox/deliveries", "", {}, "")
    local list = cjson.decode(raw).result_data
    assert.are.equal(1, #list)
    assert.are.equal("pending", list[1].state)
    assert.are.equal("q@example.com", list[1].records[1].email)
  end)

  it("forgets hooks and deliveries on reset, and the catalogue changes made through v2", function()
    assert(client.hooks:create{ type = "new_contact", url = "http://127.0.0.1:9/r" })
    assert(client.tags:create{ name = "Temporary" })
    control("POST", "/_sandbox/reset")
    assert.are.same({}, assert(client.hooks:list()))
    assert.are.same({}, control("GET", "/_sandbox/deliveries"))
    local by_name = assert(client:interests())
    assert.is_nil(by_name.Temporary)
    assert(client:contact{ email = "after@example.com" }:insert())
    assert.are.equal(0, #posted)
  end)
end)
