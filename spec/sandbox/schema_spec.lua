-- envoke.schema: the one field schema the sandbox and the client share.

local schema = require "envoke.schema"

local function problem(name, value)
  local v, why = schema.check(name, value)
  assert.is_nil(v, "expected a problem for " .. name)
  return why
end

describe("envoke.schema", function()
  describe("fields", function()
    it("has every field of API.md §4 with its maximum length", function()
      local max = {
        email = 60, consent_description = 65535, external_id = 32, remote_id = 60,
        first_name = 20, last_name = 20, title = 50, company = 50, phone = 25,
        address_1 = 100, address_2 = 100, city = 20, country = 50, province = 50,
        postal_code = 15, website = 255, feedback = 65535,
      }
      for name, n in pairs(max) do
        assert.are.equal("string", schema.fields[name].type, name)
        assert.are.equal(n, schema.fields[name].max, name)
      end
      assert.are.equal("id", schema.fields.id.type)
      assert.are.equal("consent", schema.fields.consent_status.type)
      assert.are.equal("datetime", schema.fields.consent_effective_date.type)
      assert.are.equal("date", schema.fields.consent_expiry.type)
      assert.are.equal("boolean", schema.fields.consent_force_downgrade.type)
      assert.are.equal("enum", schema.fields.language.type)
      assert.are.same({ "en", "fr", "ar", "zh", "de", "it", "ja", "ko", "pt", "ru", "es" },
        schema.fields.language.values)
      assert.are.equal("custom_fields", schema.fields.custom_fields.type)
      assert.are.equal("interests", schema.fields.interests.type)
      assert.are.equal("autoresponders", schema.fields.autoresponders.type)
    end)

    it("marks id, external_id, consent_expiry and date_created read-only, consent_force_downgrade write-only",
    function()
      assert.is_true(schema.fields.id.readonly)
      assert.is_true(schema.fields.external_id.readonly)
      assert.is_true(schema.fields.consent_expiry.readonly)
      assert.is_true(schema.fields.date_created.readonly)
      assert.is_true(schema.fields.consent_force_downgrade.writeonly)
      local readonly = 0
      for _, spec in pairs(schema.fields) do
        if spec.readonly then readonly = readonly + 1 end
      end
      assert.are.equal(4, readonly)
    end)

    it("orders the fields as the seed's Envoke Contact Object, then date_created (webhook payloads)", function()
      assert.are.same({
        "id", "external_id", "remote_id", "first_name", "last_name", "title", "email",
        "company", "phone", "address_1", "address_2", "city", "country", "province",
        "postal_code", "website", "language", "feedback", "consent_status",
        "consent_description", "consent_effective_date", "consent_expiry",
        "consent_force_downgrade", "custom_fields", "interests", "autoresponders", "date_created",
      }, schema.order)
      local n = 0
      for _ in pairs(schema.fields) do n = n + 1 end
      assert.are.equal(#schema.order, n)
    end)
  end)

  describe("utf8_len", function()
    it("counts characters, not bytes", function()
      assert.are.equal(0, schema.utf8_len(""))
      assert.are.equal(3, schema.utf8_len("abc"))
      assert.are.equal(4, schema.utf8_len("Zoë!"))
      assert.are.equal(2, schema.utf8_len("日本"))
      assert.are.equal(1, schema.utf8_len("\240\159\152\128")) -- U+1F600
    end)

    it("rejects invalid UTF-8", function()
      for _, bad in ipairs {
        "\255", "\128", "\192\128", "\224\128\128", "\237\160\128", -- lone byte, overlong, surrogate
        "\244\144\128\128", "\226\130", "a\195", -- above U+10FFFF, truncated
      } do
        assert.is_nil(schema.utf8_len(bad), ("%q"):format(bad))
      end
    end)
  end)

  describe("check", function()
    it("accepts strings up to the maximum, in characters", function()
      assert.are.equal(("é"):rep(20), schema.check("first_name", ("é"):rep(20)))
      assert.are.equal("is too long (21 characters, maximum 20)", problem("first_name", ("é"):rep(21)))
      assert.are.equal("is too long (61 characters, maximum 60)", problem("email", ("a"):rep(49) .. "@example.com"))
    end)

    it("names the wrong type", function()
      assert.are.equal("must be a string, got number", problem("phone", 5551234))
      assert.are.equal("must be a string, got boolean", problem("city", true))
      assert.are.equal("must be true or false, got string", problem("consent_force_downgrade", "true"))
    end)

    it("rejects text that is not UTF-8", function()
      assert.are.equal("is not valid UTF-8", problem("city", "Montr\233al"))
    end)

    it("checks that an email looks like one", function()
      assert.are.equal("a.b@example.com", schema.check("email", "a.b@example.com"))
      assert.are.equal("is not an email address", problem("email", "not-an-email"))
      assert.are.equal("is not an email address", problem("email", "a b@example.com"))
    end)

    it("takes the language list case-insensitively and answers lower case", function()
      assert.are.equal("fr", schema.check("language", "FR"))
      assert.are.equal("is not one of en, fr, ar, zh, de, it, ja, ko, pt, ru, es", problem("language", "xx"))
    end)

    it("keeps the caller's spelling of a consent status, normalizing only its case", function()
      assert.are.equal("Implied - No Expiry", schema.check("consent_status", "Implied - No Expiry"))
      assert.are.equal("Implied - No Expiry", schema.check("consent_status", "implied - no EXPIRY"))
      assert.are.equal("Implied: No Expiry", schema.check("consent_status", "implied: no expiry"))
      assert.are.equal("Not Provided", schema.check("consent_status", "Not Provided"))
      assert.are.equal("Not provided", schema.check("consent_status", "not provided"))
      assert.are.equal("Implied: No Expiry", schema.consent.canonical("Implied - No Expiry"))
      assert.are.equal("Not provided", schema.consent.canonical("Not Provided"))
      assert.are.equal("Express", schema.check("consent_status", "EXPRESS"))
      assert.matches("^is not one of Express, Implied %- Inquiry", problem("consent_status", "Maybe"))
    end)

    it("refuses the statuses only Envoke sets", function()
      assert.matches("only Envoke sets it", problem("consent_status", "Expired"))
      assert.matches("only Envoke sets it", problem("consent_status", "envoke spam reported"))
      assert.are.equal("External Spam Reported", schema.check("consent_status", "External Spam Reported"))
    end)

    it("normalizes RFC 3339 date-times to UTC, assuming UTC without a zone", function()
      assert.are.equal("2017-10-27T18:19:57+00:00", schema.check("consent_effective_date", "2017-10-27T18:19:57+00:00"))
      assert.are.equal("2017-10-27T18:19:57+00:00", schema.check("consent_effective_date", "2017-10-27T18:19:57Z"))
      assert.are.equal("2017-10-27T18:19:57+00:00", schema.check("consent_effective_date", "2017-10-27T18:19:57"))
      assert.are.equal("2017-10-27T23:19:57+00:00", schema.check("consent_effective_date", "2017-10-27T18:19:57-05:00"))
      assert.are.equal("2017-10-26T23:49:57+00:00",
        schema.check("consent_effective_date", "2017-10-27T05:19:57.123+05:30"))
      assert.are.equal("2016-03-01T00:30:00+00:00", schema.check("consent_effective_date", "2016-02-29T23:30:00-01:00"))
      for _, bad in ipairs { "2017-10-27", "2017-13-01T00:00:00Z", "2017-02-29T00:00:00Z", "2017-10-27T24:00:00Z",
        "27/10/2017 18:19", "2017-10-27T18:19:57+0500", "yesterday" } do
        assert.are.equal("is not an RFC 3339 date-time", problem("consent_effective_date", bad), bad)
      end
    end)

    it("takes ids as numbers or numeric strings within 1..4294967295", function()
      assert.are.equal(1234, schema.normalize("id", 1234))
      assert.are.equal(1234, schema.normalize("id", "1234"))
      assert.are.equal(4294967295, schema.normalize("id", 4294967295))
      for _, bad in ipairs { 0, -1, 4294967296, 1.5, "12a", "", true } do
        assert.is_nil((schema.normalize("id", bad)), tostring(bad))
      end
    end)

    it("says read-only for read-only fields and unknown for others", function()
      assert.are.equal("is read-only", problem("id", 5))
      assert.are.equal("is read-only", problem("external_id", "x"))
      assert.are.equal("is read-only", problem("consent_expiry", "2020-01-01"))
      assert.are.equal("is an unknown field", problem("nickname", "x"))
    end)

    it("checks custom fields as an object of strings, also by dot path", function()
      assert.are.same({ barcode = "123" }, schema.check("custom_fields", { barcode = "123" }))
      assert.are.equal("123", schema.check("custom_fields.barcode", "123"))
      assert.are.equal("must be a string, got number", problem("custom_fields.barcode", 123))
      assert.matches("'barcode' must be a string", problem("custom_fields", { barcode = 123 }))
      assert.matches("must be an object", problem("custom_fields", { "a" }))
    end)

    it("checks both write forms of interests and autoresponders, actions case-insensitively", function()
      assert.are.same({ "International", "Consumer" }, schema.check("interests", { "International", "Consumer" }))
      assert.are.same({ International = "Set", Consumer = "Unset" },
        schema.check("interests", { International = "set", Consumer = "UNSET" }))
      assert.are.same({ ["45756"] = "Dequeue" }, schema.check("autoresponders", { ["45756"] = "dequeue" }))
      assert.matches("'International' must be Set, Unset, got 'Dequeue'",
        problem("interests", { International = "Dequeue" }))
      assert.matches("must be an array of names", problem("interests", "International"))
      assert.are.same({ { key = "A", action = "Set" }, { key = "B", action = "Unset" } },
        schema.changes({ B = "Unset", A = "Set" }))
      assert.are.same({ { key = "B", action = "Set" }, { key = "A", action = "Set" } }, schema.changes({ "B", "A" }))
    end)
  end)

  describe("consent", function()
    it("lists the statuses in the seed's order, the first four sendable", function()
      assert.are.same({ "Express", "Implied - Inquiry", "Implied - Transaction", "Implied: No Expiry", "Expired",
        "Not provided", "Revoked", "External Spam Reported", "Envoke Spam Reported" }, schema.consent.statuses)
      for i, s in ipairs(schema.consent.statuses) do
        assert.are.equal(i <= 4, schema.consent.sendable[s] == true, s)
      end
    end)

    it("canonical answers nil for non-statuses", function()
      assert.is_nil(schema.consent.canonical("Implied"))
      assert.is_nil(schema.consent.canonical(nil))
    end)
  end)

  describe("time", function()
    local t = schema.time
    it("round-trips epoch and calendar", function()
      assert.are.equal(0, t.epoch(1970, 1, 1))
      assert.are.equal(951782400, t.epoch(2000, 2, 29))
      assert.are.equal("2000-02-29T00:00:00+00:00", t.format_datetime(951782400))
      assert.are.equal("1969-12-31", t.format_date(-1))
    end)
  end)
end)
