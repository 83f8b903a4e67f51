-- envoke.webhook: reading a delivery, the shared secret, repeats, the answers.
local webhook = require "envoke.webhook"
local cjson = require "cjson"

describe("envoke.webhook", function()
  describe("parse", function()
    it("reads a new_contact record like a contact", function()
      local body = cjson.encode{ { id = "12", email = "a@example.com", consent_status = "implied - no expiry",
                                   interests = { "Newsletter" }, date_created = "2024-01-01 10:00:00" } }
      local records, err = webhook.parse(body)
      assert.is_nil(err)
      assert.are.equal(1, #records)
      local r = records[1]
      assert.are.equal(12, r.id)
      assert.are.equal("a@example.com", r.email)
      assert.are.equal("Implied: No Expiry", r.consent_status)
      assert.are.same({ "Newsletter" }, r.interests)
      assert.are.equal("2024-01-01 10:00:00", r.date_created)
    end)

    it("keeps a submission's fields and reads its contact's id, external id and remote id", function()
      local records = assert(webhook.parse(cjson.encode{ {
        contact_id = 77, contact_external_id = ("a"):rep(32), contact_remote_id = "CRM-1", contact_created = true,
        submission_time = "2024-05-01 12:00:00", submission_type = "form", form_name = "Contact us",
        form_url = "https://example.com/contact", email = "b@example.com", consent_status = "Not Provided",
        marketing_source = "google", visitor_id = "v1",
      } }))
      local r = records[1]
      assert.are.equal(77, r.id)
      assert.are.equal(77, r.contact_id)
      assert.are.equal(("a"):rep(32), r.external_id)
      assert.are.equal("CRM-1", r.remote_id)
      assert.are.equal("Not provided", r.consent_status)
      assert.are.equal("Contact us", r.form_name)
      assert.are.equal("google", r.marketing_source)
      assert.is_true(r.contact_created)
    end)

    it("reads a batch of email events, and an empty batch", function()
      local records = assert(webhook.parse('[{"event":"email_open","email":"a@x.io"},{"event":"email_open"}]'))
      assert.are.equal(2, #records)
      assert.are.same({}, assert(webhook.parse("[]")))
    end)

    it("answers nil, err for every bad body, and never raises", function()
      local bad = { "", "{}", '{"email":"a@b.c"}', "[1,2]", '[{"a":1},"x"]', "[[1]]", "nul", "[", "\0", "true",
                    '"[]"', ("["):rep(5000), 42, {}, true, false }
      for i = 1, #bad + 1 do -- the last one is nil
        local ok, records, err = pcall(webhook.parse, bad[i])
        assert.is_true(ok, "raised on bad body #" .. i)
        assert.is_nil(records, "accepted bad body #" .. i)
        assert.are.equal("protocol", err.kind)
      end
      local records, err = webhook.parse(("x"):rep(100), { max_body = 10 })
      assert.is_nil(records)
      assert.are.equal("too_large", err.kind)
    end)

    it("survives random bytes", function()
      local rand = require("envoke.core").random_bytes
      for _ = 1, 300 do
        local ok = pcall(webhook.parse, rand(1 + math.floor(require("envoke.core").random() * 64)))
        assert.is_true(ok)
      end
    end)
  end)

  describe("secret_matches", function()
    it("is true only for the same secret", function()
      local s = webhook.new_secret()
      assert.are.equal(32, #s)
      assert.truthy(s:find("^%x+$"))
      assert.is_true(webhook.secret_matches(s, s))
      assert.is_false(webhook.secret_matches(s:sub(1, 31), s))
      assert.is_false(webhook.secret_matches(s .. "0", s))
      assert.is_false(webhook.secret_matches(("0"):rep(32), s))
      assert.is_false(webhook.secret_matches(nil, s))
      assert.is_false(webhook.secret_matches("", ""))
      assert.is_false(webhook.secret_matches(s, nil))
      assert.are_not.equal(webhook.new_secret(), s)
    end)
  end)

  describe("deduper", function()
    it("notices a batch delivered again within its ttl, and forgets on request", function()
      local now = 1000
      local d = webhook.deduper{ ttl = 3600, clock = function() return now end }
      local body = '[{"email":"a@example.com"}]'
      assert.is_true(d:first(body))
      assert.is_false(d:first(body))
      assert.is_true(d:first('[{"email":"b@example.com"}]'))
      now = now + 600 -- Envoke's retry
      assert.is_false(d:first(body))
      d:forget(body)
      assert.is_true(d:first(body))
      now = now + 3601
      assert.is_true(d:first(body))
    end)

    it("keys batches by their bytes", function()
      assert.are.equal(webhook.batch_key("[1]"), webhook.batch_key("[1]"))
      assert.are_not.equal(webhook.batch_key("[1]"), webhook.batch_key("[2]"))
      assert.are_not.equal(webhook.batch_key("ab"), webhook.batch_key("ba"))
    end)

    it("expires old batches by itself", function()
      local now = 0
      local d = webhook.deduper{ ttl = 10, clock = function() return now end }
      for i = 1, 1000 do d:first("[" .. i .. "]") end
      now = 11
      d:first("[0]")
      local n = 0
      for _ in pairs(d.seen) do n = n + 1 end
      assert.are.equal(1, n)
    end)
  end)

  describe("receive", function()
    local BODY = '[{"email":"a@example.com","consent_status":"Revoked"}]'

    it("answers 403 for a wrong secret, without reading the body", function()
      local called = false
      local status, err = webhook.receive(BODY, { secret = "s3cret-s3cret", given = "guess",
                                                  handle = function() called = true end })
      assert.are.equal(403, status)
      assert.are.equal("auth", err.kind)
      assert.is_false(called)
    end)

    it("answers 400 for a bad body and 413 for a large one", function()
      assert.are.equal(400, (webhook.receive("{}", { handle = function() end })))
      assert.are.equal(413, (webhook.receive(BODY, { handle = function() end, max_body = 5 })))
    end)

    it("handles a delivery once: a repeat is 200 without handling it again", function()
      local handled = 0
      local opts = { secret = "abc123", given = "abc123", dedupe = webhook.deduper(),
                     handle = function(records)
                       handled = handled + 1
                       assert.are.equal("Revoked", records[1].consent_status)
                     end }
      assert.are.equal(200, (webhook.receive(BODY, opts)))
      assert.are.equal(200, (webhook.receive(BODY, opts)))
      assert.are.equal(1, handled)
    end)

    it("answers 500 when the handler fails, so Envoke's retry is handled", function()
      local fail = true
      local handled = 0
      local opts = { dedupe = webhook.deduper(), handle = function()
        handled = handled + 1
        if fail then error("CRM down") end
      end }
      local status, err = webhook.receive(BODY, opts)
      assert.are.equal(500, status)
      assert.truthy(tostring(err):find("CRM down", 1, true))
      fail = false
      assert.are.equal(200, (webhook.receive(BODY, opts)))
      assert.are.equal(2, handled)
      assert.are.equal(500, (webhook.receive("[]", { handle = function() return false end })))
    end)

    it("answers 410 when the handler says the hook is gone", function()
      assert.are.equal(410, (webhook.receive(BODY, { handle = function() return "gone" end })))
      local status, headers, body = webhook.gone()
      assert.are.equal(410, status)
      assert.are.equal("application/json", headers["content-type"])
      assert.is_string(body)
    end)

    it("raises at the caller's line without a handler", function()
      local ok, msg = pcall(webhook.receive, BODY, {})
      assert.is_false(ok)
      assert.truthy(tostring(msg):find("opts.handle must be a function", 1, true))
    end)
  end)
end)
