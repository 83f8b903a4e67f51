-- Every field rule of API.md §4, through the API.

local helper = require("spec.sandbox.helper").init(describe, setup, teardown, before_each)
local schema = require "envoke.schema"

-- A value of exactly n characters (multi-byte, so bytes != characters).
local function chars(n)
  return ("é"):rep(n)
end

local TEXT_FIELDS = {
  remote_id = 60, first_name = 20, last_name = 20, title = 50, company = 50, phone = 25,
  address_1 = 100, address_2 = 100, city = 20, country = 50, province = 50, postal_code = 15,
  website = 255, feedback = 65535, consent_description = 65535,
}

describe("sandbox field rules", function()
  helper.each_transport(function(T)
    before_each(function() T:insert({ email = "a@example.com" }) end)

    it("accepts every text field at its maximum length in characters", function()
      local body = {}
      for name, max in pairs(TEXT_FIELDS) do body[name] = chars(max) end
      local c = T:patch(1, body)
      for name, max in pairs(TEXT_FIELDS) do
        assert.are.equal(chars(max), c[name], name)
      end
    end)

    it("refuses every text field one character over, each with its own error, in one 400", function()
      local body = {}
      for name, max in pairs(TEXT_FIELDS) do body[name] = chars(max + 1) end
      local errors = T:invalid("PATCH", "/v1/contacts/1", body)
      local n = 0
      for name, max in pairs(TEXT_FIELDS) do
        n = n + 1
        helper.assert_error(errors, ("%s is too long (%d characters, maximum %d)"):format(name, max + 1, max))
      end
      assert.are.equal(n, #errors)
    end)

    it("counts the email's length in characters too (max 60)", function()
      local ok_email = ("é"):rep(48) .. "@example.com"
      assert.are.equal(60, schema.utf8_len(ok_email))
      assert.are.equal(ok_email, T:patch(1, { email = ok_email }).email)
      helper.assert_error(T:invalid("PATCH", "/v1/contacts/1", { email = "é" .. ok_email }),
        "email is too long (61 characters, maximum 60)")
    end)

    it("refuses an email that is not an address", function()
      assert.are.same({ "email is not an email address" }, T:invalid("POST", "/v1/contacts", { email = "nobody" }))
    end)

    it("refuses values of the wrong type", function()
      local errors = T:invalid("PATCH", "/v1/contacts/1", {
        city = 12, first_name = true, country = { "CA" }, consent_force_downgrade = "yes",
        custom_fields = "x", interests = 5,
      })
      assert.are.same({
        "first_name must be a string, got boolean",
        "city must be a string, got number",
        "country must be a string, got table",
        "consent_force_downgrade must be true or false, got string",
        "custom_fields must be an object of custom field name -> string",
        "interests must be an array of names or an object of name or id -> Set/Unset, got number",
      }, errors)
    end)

    it("refuses text that is not UTF-8", function()
      local errors = T:invalid("PATCH", "/v1/contacts/1", '{"city":"Montr\233al"}')
      assert.are.same({ "city is not valid UTF-8" }, errors)
    end)

    it("takes the language list only, any case, answering lower case", function()
      for _, lang in ipairs { "en", "fr", "ar", "zh", "de", "it", "ja", "ko", "pt", "ru", "es" } do
        assert.are.equal(lang, T:patch(1, { language = lang:upper() }).language)
      end
      for _, bad in ipairs { "nl", "eng", "e" } do
        assert.are.same({ "language is not one of en, fr, ar, zh, de, it, ja, ko, pt, ru, es" },
          T:invalid("PATCH", "/v1/contacts/1", { language = bad }))
      end
    end)

    it("answers consent_effective_date in RFC 3339 UTC, converting zones and assuming UTC without one", function()
      local function effective(v)
        return T:patch(1, helper.express({ consent_effective_date = v })).consent_effective_date
      end
      assert.are.equal("2017-10-27T18:19:57+00:00", effective("2017-10-27T18:19:57+00:00"))
      assert.are.equal("2017-10-27T23:19:57+00:00", effective("2017-10-27T18:19:57-05:00"))
      assert.are.equal("2017-10-28T18:19:57+00:00", effective("2017-10-28T18:19:57"))
      assert.are.equal("2017-10-29T18:19:57+00:00", effective("2017-10-29T18:19:57Z"))
    end)

    it("refuses a consent_effective_date that is not RFC 3339", function()
      for _, bad in ipairs { "2017-10-27", "10/27/2017", "2017-10-27T18:19", "2017-02-30T00:00:00Z" } do
        assert.are.same({ "consent_effective_date is not an RFC 3339 date-time" },
          T:invalid("PATCH", "/v1/contacts/1", helper.express({ consent_effective_date = bad })), bad)
      end
    end)

    it("never returns consent_force_downgrade", function()
      local res = T:call("PATCH", "/v1/contacts/1", { consent_force_downgrade = true, city = "X" })
      assert.are.equal(200, res.status)
      assert.is_nil(res.body:find("consent_force_downgrade", 1, true))
      assert.is_nil(T:get(1).consent_force_downgrade)
    end)

    it("refuses unknown fields by name", function()
      assert.are.same({ "nickname is an unknown field", "zip is an unknown field" },
        T:invalid("PATCH", "/v1/contacts/1", { zip = "1", nickname = "x" }))
    end)

    describe("custom_fields", function()
      it("sets the account's custom fields as strings and answers them as an object", function()
        local c = T:patch(1, { custom_fields = { custom_field_name1 = "Field Value 1", birthday = "1990-01-31" } })
        assert.are.same({ custom_field_name1 = "Field Value 1", birthday = "1990-01-31" }, c.custom_fields)
        c = T:patch(1, { custom_fields = { barcode = "123" } })
        assert.are.same({ custom_field_name1 = "Field Value 1", birthday = "1990-01-31", barcode = "123" },
          c.custom_fields)
      end)

      it("matches custom field names case-insensitively, answering the catalogue's spelling", function()
        assert.are.same({ barcode = "9" }, T:patch(1, { custom_fields = { BarCode = "9" } }).custom_fields)
      end)

      it("ignores blank values unless write_empty_values, which removes them", function()
        T:patch(1, { custom_fields = { barcode = "123" } })
        assert.are.same({ barcode = "123" }, T:patch(1, { custom_fields = { barcode = "" } }).custom_fields)
        local res = T:call("PATCH", "/v1/contacts/1?write_empty_values=1", { custom_fields = { barcode = "" } })
        assert.are.equal(200, res.status)
        assert.matches('"custom_fields":{}', res.body)
      end)

      it("refuses names the account does not have and values that are not strings", function()
        local errors = T:invalid("PATCH", "/v1/contacts/1", { custom_fields = { shoe_size = "9", barcode = 123 } })
        assert.are.same({
          "custom_fields.barcode must be a string, got number",
          "custom_fields.shoe_size is not a custom field of this account",
        }, errors)
      end)
    end)

    it("collects problems of every kind in one 400", function()
      local errors = T:invalid("PATCH", "/v1/contacts/1", {
        first_name = chars(21), language = "xx", consent_status = "Maybe",
        consent_effective_date = "soon", custom_fields = { nope = "1" }, interests = { "Nope" },
        autoresponders = { Nope = "Set" }, external_id = "abc", foo = 1,
      })
      assert.are.equal(9, #errors)
    end)
  end)
end)
