-- Consent (docs/envoke-api.md §5, the seed's consent fields).

local helper = require("spec.sandbox.helper").init(describe, setup, teardown, before_each)
local schema = require "envoke.schema"

local DAY = 86400
local EFFECTIVE = "2017-10-27T18:19:57+00:00"

local function status_body(status, extra)
  local t = { consent_status = status }
  if schema.consent.sendable[schema.consent.canonical(status) or ""] then
    t.consent_description = "Consent for " .. status
  end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

describe("sandbox consent", function()
  helper.each_transport(function(T)
    local function with_status(status, extra)
      local body = status_body(status, extra)
      body.email = "c@example.com"
      return T:insert(body)
    end

    local function clock_now()
      return T:control("GET", "clock").epoch
    end

    describe("statuses", function()
      it("gives a new contact without a status 'Not provided' and no dates", function()
        local c = T:insert({ email = "a@example.com" })
        assert.are.equal("Not provided", c.consent_status)
        assert.are.equal("", c.consent_effective_date)
        assert.are.equal("", c.consent_expiry)
      end)

      it("accepts every settable status, in both spellings and any case, answering the seed's spelling", function()
        local cases = {
          { "Express", "Express" }, { "implied - inquiry", "Implied - Inquiry" },
          { "IMPLIED - TRANSACTION", "Implied - Transaction" }, { "Implied: No Expiry", "Implied: No Expiry" },
          { "Implied - No Expiry", "Implied: No Expiry" }, { "Not provided", "Not provided" },
          { "Not Provided", "Not provided" }, { "revoked", "Revoked" },
          { "External Spam Reported", "External Spam Reported" },
        }
        for i, case in ipairs(cases) do
          local body = status_body(case[1])
          body.email = "s" .. i .. "@example.com"
          assert.are.equal(case[2], T:insert(body).consent_status, case[1])
        end
      end)

      it("refuses Expired and Envoke Spam Reported: only Envoke sets them", function()
        assert.are.same({ "consent_status cannot be set to 'Expired': only Envoke sets it" },
          T:invalid("POST", "/v1/contacts", { email = "a@example.com", consent_status = "Expired" }))
        assert.are.same({ "consent_status cannot be set to 'Envoke Spam Reported': only Envoke sets it" },
          T:invalid("POST", "/v1/contacts", { email = "a@example.com", consent_status = "envoke spam reported" }))
      end)

      it("refuses unknown statuses", function()
        helper.assert_error(T:invalid("POST", "/v1/contacts", { email = "a@example.com", consent_status = "Implied" }),
          "consent_status is not one of Express, Implied - Inquiry, Implied - Transaction, Implied: No Expiry")
      end)

      it("requires a description with every sendable status, and not with the others", function()
        for _, s in ipairs { "Express", "Implied - Inquiry", "Implied - Transaction", "Implied: No Expiry" } do
          assert.are.same({ "consent_description is required with consent_status '" .. s .. "'" },
            T:invalid("POST", "/v1/contacts", { email = "a@example.com", consent_status = s }), s)
          assert.are.same({ "consent_description is required with consent_status '" .. s .. "'" },
            T:invalid("POST", "/v1/contacts",
              { email = "a@example.com", consent_status = s, consent_description = "" }), s)
        end
        for i, s in ipairs { "Not provided", "Revoked", "External Spam Reported" } do
          T:insert({ email = "n" .. i .. "@example.com", consent_status = s })
        end
      end)

      it("accepts consent_effective_date only together with consent_status", function()
        T:insert({ email = "a@example.com" })
        assert.are.same(
          { "consent_effective_date is only accepted together with consent_status (it starts a new consent record)" },
          T:invalid("PATCH", "/v1/contacts/1", { consent_effective_date = EFFECTIVE }))
      end)

      it("dates a status sent without an effective date at the sandbox clock", function()
        local before = clock_now()
        local c = with_status("Express")
        local t = schema.time.parse_datetime(c.consent_effective_date)
        assert.is_true(t >= before and t <= before + 5, c.consent_effective_date)
      end)

      it("keeps the description of the consent record", function()
        local c = with_status("Express", { consent_effective_date = EFFECTIVE })
        assert.are.equal("Consent for Express", c.consent_description)
        assert.are.equal(EFFECTIVE, c.consent_effective_date)
        c = T:patch(1, { consent_description = "Updated reason" })
        assert.are.equal("Updated reason", c.consent_description)
        assert.are.equal(EFFECTIVE, c.consent_effective_date)
      end)
    end)

    describe("expiry", function()
      it("is 6 months after the effective date for Implied - Inquiry", function()
        local c = with_status("Implied - Inquiry", { consent_effective_date = "2037-10-27T18:19:57Z" })
        assert.are.equal("2038-04-27", c.consent_expiry)
        assert.are.equal("Implied - Inquiry", c.consent_status)
      end)

      it("is 2 years after for Implied - Transaction, and none for the others", function()
        local c = with_status("Implied - Transaction", { consent_effective_date = "2037-10-27T18:19:57Z" })
        assert.are.equal("2039-10-27", c.consent_expiry)
        for i, s in ipairs { "Express", "Implied: No Expiry", "Revoked" } do
          local body = status_body(s, { consent_effective_date = "2037-10-27T18:19:57Z" })
          body.email = "x" .. i .. "@example.com"
          assert.are.equal("", T:insert(body).consent_expiry, s)
        end
      end)

      it("clamps to the end of a shorter month", function()
        assert.are.equal("2038-02-28",
          with_status("Implied - Inquiry", { consent_effective_date = "2037-08-31T10:00:00Z" }).consent_expiry)
      end)

      it("makes the contact read as Expired once passed", function()
        with_status("Implied - Inquiry")
        T:advance(170 * DAY)
        assert.are.equal("Implied - Inquiry", T:get(1).consent_status)
        T:advance(15 * DAY)
        local c = T:get(1)
        assert.are.equal("Expired", c.consent_status)
        assert.is_truthy(c.consent_expiry:find("^%d%d%d%d%-%d%d%-%d%d$"))
        local list = T:ok("GET", "/v1/contacts?filter[consent_status]=Expired")
        assert.are.equal(1, #list)
      end)

      it("expires Implied - Transaction after 2 years, not before", function()
        with_status("Implied - Transaction")
        T:advance(720 * DAY)
        assert.are.equal("Implied - Transaction", T:get(1).consent_status)
        T:advance(15 * DAY)
        assert.are.equal("Expired", T:get(1).consent_status)
      end)

      it("reads an Implied consent effective long ago as Expired at once, keeping its expiry date", function()
        local c = with_status("Implied - Inquiry", { consent_effective_date = EFFECTIVE })
        assert.are.equal("Expired", c.consent_status)
        assert.are.equal("2018-04-27", c.consent_expiry)
      end)

      it("lets an expired contact take a new sendable consent without the flag", function()
        with_status("Implied - Inquiry", { consent_effective_date = EFFECTIVE })
        local c = T:patch(1, status_body("Implied - Inquiry"))
        assert.are.equal("Implied - Inquiry", c.consent_status)
      end)
    end)

    describe("downgrades", function()
      -- from, to, extra fields of the first and second record
      local downgrades = {
        { "Express", "Implied - Inquiry" },
        { "Express", "Implied - Transaction" },
        { "Express", "Implied: No Expiry" },
        { "Implied: No Expiry", "Implied - Transaction" },
        { "Implied: No Expiry", "Implied - Inquiry" },
        { "Implied - Transaction", "Implied - Inquiry" },
        { "Express", "Not provided" },
        { "Implied - Inquiry", "Not provided" },
        { "Implied: No Expiry", "Not Provided" },
      }
      for _, case in ipairs(downgrades) do
        it(("refuses %s -> %s without consent_force_downgrade, applying the other fields"):format(case[1], case[2]),
          function()
            local before = with_status(case[1])
            local c = T:patch(before.id, status_body(case[2], { city = "Toronto" }))
            assert.are.equal(case[1], c.consent_status)
            assert.are.equal(before.consent_description, c.consent_description)
            assert.are.equal(before.consent_effective_date, c.consent_effective_date)
            assert.are.equal("Toronto", c.city)
          end)

        it(("allows %s -> %s with consent_force_downgrade"):format(case[1], case[2]), function()
          local before = with_status(case[1])
          local c = T:patch(before.id, status_body(case[2], { consent_force_downgrade = true }))
          assert.are.equal(schema.consent.canonical(case[2]), c.consent_status)
        end)
      end

      it("refuses a recent Implied consent replaced by an older one of the same kind", function()
        with_status("Implied - Transaction", { consent_effective_date = "2037-01-01T00:00:00Z" })
        local c = T:patch(1, status_body("Implied - Transaction", { consent_effective_date = "2036-06-01T00:00:00Z" }))
        assert.are.equal("2037-01-01T00:00:00+00:00", c.consent_effective_date)
        c = T:patch(1, status_body("Implied - Transaction",
          { consent_effective_date = "2036-06-01T00:00:00Z", consent_force_downgrade = true }))
        assert.are.equal("2036-06-01T00:00:00+00:00", c.consent_effective_date)
        c = T:patch(1, status_body("Implied - Transaction", { consent_effective_date = "2037-06-01T00:00:00Z" }))
        assert.are.equal("2037-06-01T00:00:00+00:00", c.consent_effective_date)
      end)

      it("allows an Implied consent replaced by one that lasts longer", function()
        with_status("Implied - Inquiry", { consent_effective_date = "2037-01-01T00:00:00Z" })
        -- Transaction given earlier still lasts longer (2 years against 6 months).
        local c = T:patch(1, status_body("Implied - Transaction", { consent_effective_date = "2036-12-01T00:00:00Z" }))
        assert.are.equal("Implied - Transaction", c.consent_status)
      end)

      it("notes a refused downgrade in the request log", function()
        with_status("Express")
        T:clear_log()
        T:patch(1, status_body("Implied - Inquiry"))
        local log = T:log()
        assert.matches("needs consent_force_downgrade", log[1].notes[1])
      end)

      it("does not keep consent_force_downgrade for later requests", function()
        with_status("Express")
        T:patch(1, { consent_force_downgrade = true, city = "X" })
        assert.are.equal("Express", T:patch(1, status_body("Implied - Inquiry")).consent_status)
      end)

      it("needs the flag for Revoked -> Not provided (it would forget the revocation)", function()
        with_status("Revoked")
        assert.are.equal("Revoked", T:patch(1, { consent_status = "Not provided" }).consent_status)
        assert.are.equal("Not provided",
          T:patch(1, { consent_status = "Not provided", consent_force_downgrade = true }).consent_status)
      end)
    end)

    describe("changes always allowed", function()
      local upgrades = {
        { "Not provided", "Express" }, { "Not provided", "Implied - Inquiry" }, { "Revoked", "Implied: No Expiry" },
        { "Implied - Inquiry", "Implied - Transaction" }, { "Implied - Transaction", "Implied: No Expiry" },
        { "Implied - Inquiry", "Express" }, { "Implied: No Expiry", "Express" }, { "Express", "Express" },
        { "Express", "Revoked" }, { "Implied - Inquiry", "External Spam Reported" }, { "Not provided", "Revoked" },
        { "Revoked", "External Spam Reported" },
      }
      for _, case in ipairs(upgrades) do
        it(("%s -> %s without the flag"):format(case[1], case[2]), function()
          with_status(case[1])
          assert.are.equal(case[2], T:patch(1, status_body(case[2])).consent_status)
        end)
      end
    end)

    describe("spam statuses", function()
      it("never change External Spam Reported, flag or not", function()
        with_status("External Spam Reported")
        for _, s in ipairs { "Express", "Revoked", "Not provided", "Implied: No Expiry" } do
          local c = T:patch(1, status_body(s, { consent_force_downgrade = true, city = s }))
          assert.are.equal("External Spam Reported", c.consent_status, s)
          assert.are.equal(s, c.city)
        end
      end)

      it("never change Envoke Spam Reported, flag or not", function()
        T:load({ { email = "spam@example.com", consent_status = "Envoke Spam Reported" } })
        for _, s in ipairs { "Express", "Revoked", "External Spam Reported" } do
          local c = T:patch(1, status_body(s, { consent_force_downgrade = true }))
          assert.are.equal("Envoke Spam Reported", c.consent_status, s)
        end
      end)
    end)
  end)
end)

describe("envoke.sandbox.consent.add_months", function()
  local consent = require "envoke.sandbox.consent"
  local t = schema.time
  it("adds months, clamping to the month's end", function()
    assert.are.equal("2018-02-28", t.format_date(consent.add_months(t.epoch(2017, 8, 31), 6)))
    assert.are.equal("2020-02-29", t.format_date(consent.add_months(t.epoch(2019, 8, 31), 6)))
    assert.are.equal("2019-10-27", t.format_date(consent.add_months(t.epoch(2017, 10, 27), 24)))
    assert.are.equal("2018-01-15", t.format_date(consent.add_months(t.epoch(2017, 7, 15), 6)))
  end)
end)
