-- Insert, update and upsert (API.md §3, §7; the seed's update page).

local helper = require("spec.sandbox.helper").init(describe, setup, teardown, before_each)

describe("sandbox writes", function()
  helper.each_transport(function(T)
    describe("insert", function()
      it("creates a contact with the next id, a 32-hex external_id and every field in the seed's order", function()
        local res = T:call("POST", "/v1/contacts", { email = "new-contact@api-testing.com", first_name = "John" })
        assert.are.equal(200, res.status)
        local c = res.json.result_data
        assert.are.equal(1, c.id)
        assert.matches("^%x+$", c.external_id)
        assert.are.equal(32, #c.external_id)
        assert.matches('"result_data":{"id":1,"external_id":"%x+","remote_id":"","first_name":"John","last_name":"",'
          .. '"title":"","email":"new%-contact@api%-testing.com","company":"","phone":"","address_1":"","address_2":"",'
          .. '"city":"","country":"","province":"","postal_code":"","website":"","language":"","feedback":"",'
          .. '"consent_status":"Not provided","consent_description":"","consent_effective_date":"","consent_expiry":"",'
          .. '"custom_fields":{},"interests":%[%],"autoresponders":%[%],'
          .. '"date_created":"%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d"}}$', res.body)
        assert.are.equal(2, T:insert({ email = "second@example.com" }).id)
      end)

      it("gives every contact its own external_id", function()
        local seen = {}
        for i = 1, 20 do
          local c = T:insert({ email = "e" .. i .. "@example.com" })
          assert.is_nil(seen[c.external_id])
          seen[c.external_id] = true
        end
      end)

      it("requires an email", function()
        helper.assert_error(T:invalid("POST", "/v1/contacts", { first_name = "Ann" }), "email is required")
        helper.assert_error(T:invalid("POST", "/v1/contacts", { email = "" }), "email is required")
      end)

      it("refuses a second contact with the same email, case-insensitively", function()
        T:insert({ email = "Dup@Example.com" })
        local errors = T:invalid("POST", "/v1/contacts", { email = "dup@example.COM" })
        assert.are.same({ "A contact with email 'dup@example.COM' already exists" }, errors)
        assert.are.equal(1, #T:contacts())
      end)

      it("refuses an id, and external_id or consent_expiry are not written", function()
        helper.assert_error(T:invalid("POST", "/v1/contacts", { email = "a@example.com", id = 7 }), "id is read-only")
        helper.assert_error(T:invalid("POST", "/v1/contacts", { email = "a@example.com", external_id = "abc" }),
          "external_id is read-only")
        local c = T:insert({ email = "a@example.com", consent_expiry = "2030-01-01" })
        assert.are.equal("", c.consent_expiry)
      end)

      it("keeps the id counter after a delete", function()
        T:insert({ email = "a@example.com" })
        T:ok("DELETE", "/v1/contacts/1")
        assert.are.equal(2, T:insert({ email = "b@example.com" }).id)
      end)
    end)

    describe("update by path id", function()
      it("changes only the fields sent", function()
        T:insert({ email = "a@example.com", first_name = "Ann", city = "Ottawa" })
        local c = T:patch(1, { province = "MB", city = "Winnipeg" })
        assert.are.equal("Ann", c.first_name)
        assert.are.equal("Winnipeg", c.city)
        assert.are.equal("MB", c.province)
        assert.are.same(c, T:get(1))
      end)

      it("answers 400 Contact not found for an unknown id", function()
        assert.are.same({ "Contact not found" }, T:invalid("PATCH", "/v1/contacts/99", { city = "Toronto" }))
      end)

      it("accepts an id in the body that matches the path, as a number or a string", function()
        T:insert({ email = "a@example.com" })
        assert.are.equal("X", T:patch(1, { id = 1, city = "X" }).city)
        assert.are.equal("Y", T:patch(1, { id = "1", city = "Y" }).city)
        helper.assert_error(T:invalid("PATCH", "/v1/contacts/1", { id = 2, city = "Z" }),
          "does not match the id in the path")
      end)

      it("can change the email, but not to one another contact has", function()
        T:insert({ email = "a@example.com" })
        T:insert({ email = "b@example.com" })
        assert.are.equal("c@example.com", T:patch(1, { email = "c@example.com" }).email)
        assert.are.same({ "A contact with email 'B@example.com' already exists" },
          T:invalid("PATCH", "/v1/contacts/1", { email = "B@example.com" }))
        assert.are.equal("A@example.com", T:patch(1, { email = "A@example.com" }).email) -- its own, recased
      end)

      it("frees the old email and finds the contact by the new one", function()
        T:insert({ email = "old@example.com", remote_id = "R-old" })
        T:patch(1, { email = "new@example.com", remote_id = "R-new" })
        assert.are.equal(2, T:insert({ email = "old@example.com", remote_id = "R-old" }).id)
        assert.are.equal(1, T:ok("PATCH", "/v1/contacts", { email = "NEW@example.com", city = "X" }).result_data.id)
        assert.are.equal(1, T:ok("PATCH", "/v1/contacts?keyfield=remote_id", { remote_id = "R-new" }).result_data.id)
        assert.are.equal(2, T:ok("PATCH", "/v1/contacts", { email = "old@example.com", city = "Y" }).result_data.id)
      end)

      it("ignores blank values without write_empty_values and clears them with it", function()
        T:insert({ email = "a@example.com", first_name = "Ann", city = "Ottawa", language = "fr" })
        local c = T:patch(1, { first_name = "", city = "", language = "" })
        assert.are.equal("Ann", c.first_name)
        assert.are.equal("Ottawa", c.city)
        assert.are.equal("fr", c.language)
        c = T:patch(1, { first_name = "", language = "" }, "write_empty_values=1")
        assert.are.equal("", c.first_name)
        assert.are.equal("", c.language)
        assert.are.equal("Ottawa", c.city)
      end)

      it("treats null like a blank value", function()
        T:insert({ email = "a@example.com", first_name = "Ann" })
        assert.are.equal("Ann", T:patch(1, '{"first_name":null}').first_name)
        assert.are.equal("", T:patch(1, '{"first_name":null}', "write_empty_values=1").first_name)
      end)

      it("refuses to clear the email even with write_empty_values", function()
        T:insert({ email = "a@example.com" })
        assert.are.same({ "email cannot be cleared" },
          T:invalid("PATCH", "/v1/contacts/1?write_empty_values=1", { email = "" }))
      end)

      it("ignores consent_expiry and accepts an unchanged external_id, refusing a different one", function()
        local c = T:insert({ email = "a@example.com" })
        assert.are.equal("", T:patch(1, { consent_expiry = "2031-01-01", external_id = c.external_id }).consent_expiry)
        assert.are.same({ "external_id is read-only" },
          T:invalid("PATCH", "/v1/contacts/1", { external_id = ("0"):rep(32) }))
      end)

      it("lists every problem and changes nothing when any is found", function()
        T:insert({ email = "a@example.com", city = "Ottawa" })
        local errors = T:invalid("PATCH", "/v1/contacts/1", {
          city = "Winnipeg", first_name = ("x"):rep(21), phone = 5551234, nickname = "Al", language = "xx",
        })
        assert.are.same({
          "first_name is too long (21 characters, maximum 20)",
          "phone must be a string, got number",
          "language is not one of en, fr, ar, zh, de, it, ja, ko, pt, ru, es",
          "nickname is an unknown field",
        }, errors)
        assert.are.equal("Ottawa", T:get(1).city)
      end)

      it("reports not found together with the field problems", function()
        local errors = T:invalid("PATCH", "/v1/contacts/5", { city = ("x"):rep(21) })
        assert.are.same({ "Contact not found", "city is too long (21 characters, maximum 20)" }, errors)
      end)
    end)

    describe("update by a key in the body", function()
      before_each(function()
        T:insert({ email = "a@example.com", first_name = "A", remote_id = "R-1" })
        T:insert({ email = "b@example.com", first_name = "B", remote_id = "R-2" })
      end)

      it("uses the id when the body has one", function()
        local out = T:ok("PATCH", "/v1/contacts", { id = 2, first_name = "Bee" })
        assert.are.equal("Updated", out.result_text)
        assert.are.equal(2, out.result_data.id)
        assert.are.equal("Bee", T:get(2).first_name)
      end)

      it("uses the email (case-insensitively) when the body has no id, without rewriting it", function()
        local out = T:ok("PATCH", "/v1/contacts", { email = "B@EXAMPLE.com", first_name = "UPDATED" })
        assert.are.equal(2, out.result_data.id)
        assert.are.equal("UPDATED", out.result_data.first_name)
        assert.are.equal("b@example.com", out.result_data.email)
      end)

      it("with an id and an email, updates the contact with that id and changes its email", function()
        local out = T:ok("PATCH", "/v1/contacts", { id = 1, email = "new@example.com" })
        assert.are.equal(1, out.result_data.id)
        assert.are.equal("new@example.com", T:get(1).email)
      end)

      it("keyfield=email uses the email even when an id is present", function()
        local out = T:ok("PATCH", "/v1/contacts?keyfield=email", { id = 1, email = "b@example.com", first_name = "K" })
        assert.are.equal(2, out.result_data.id)
        assert.are.equal("A", T:get(1).first_name)
      end)

      it("keyfield=id without an id falls back to the email (seed)", function()
        local out = T:ok("PATCH", "/v1/contacts?keyfield=id", { email = "a@example.com", first_name = "F" })
        assert.are.equal(1, out.result_data.id)
      end)

      it("keyfield=remote_id uses the remote_id, and may change the email", function()
        local out = T:ok("PATCH", "/v1/contacts?keyfield=remote_id",
          { remote_id = "R-2", email = "new-contact@api-testing.com", first_name = "John" })
        assert.are.equal(2, out.result_data.id)
        assert.are.equal("new-contact@api-testing.com", out.result_data.email)
        assert.are.equal("John", out.result_data.first_name)
      end)

      it("keyfield=remote_id needs a remote_id in the body and an existing contact", function()
        assert.are.same({ "remote_id is required with keyfield=remote_id" },
          T:invalid("PATCH", "/v1/contacts?keyfield=remote_id", { email = "a@example.com" }))
        assert.are.same({ "Contact not found" },
          T:invalid("PATCH", "/v1/contacts?keyfield=remote_id", { remote_id = "R-9", first_name = "X" }))
      end)

      it("refuses an unknown keyfield", function()
        assert.are.same({ "keyfield must be one of id, email, remote_id" },
          T:invalid("PATCH", "/v1/contacts?keyfield=phone", { email = "a@example.com" }))
      end)

      it("needs an id or an email", function()
        assert.are.same({ "id or email is required to identify the contact" },
          T:invalid("PATCH", "/v1/contacts", { first_name = "X" }))
      end)

      it("answers Contact not found for an unknown email or id", function()
        assert.are.same({ "Contact not found" }, T:invalid("PATCH", "/v1/contacts", { email = "zz@example.com" }))
        assert.are.same({ "Contact not found" }, T:invalid("PATCH", "/v1/contacts", { id = 42 }))
      end)

      it("refuses a remote_id another contact has", function()
        assert.are.same({ "A contact with remote_id 'R-2' already exists" },
          T:invalid("PATCH", "/v1/contacts/1", { remote_id = "R-2" }))
      end)
    end)

    describe("upsert", function()
      it("inserts when nothing matches the email, answering Created", function()
        local out = T:ok("POST", "/v1/contacts?upsert=1", { email = "u@example.com", first_name = "U" })
        assert.are.equal("Created", out.result_text)
        assert.are.equal(1, out.result_data.id)
      end)

      it("updates the contact with that email, answering Updated", function()
        T:insert({ email = "u@example.com", first_name = "U", city = "Ottawa" })
        local out = T:ok("POST", "/v1/contacts?upsert=1", { email = "U@example.com", first_name = "V" })
        assert.are.equal("Updated", out.result_text)
        assert.are.equal(1, out.result_data.id)
        assert.are.equal("V", out.result_data.first_name)
        assert.are.equal("Ottawa", out.result_data.city)
        assert.are.equal(1, #T:contacts())
      end)

      it("updates by id, and refuses an id that does not exist (ids come from Envoke)", function()
        T:insert({ email = "u@example.com" })
        assert.are.equal("Updated", T:ok("POST", "/v1/contacts?upsert=1", { id = 1, city = "X" }).result_text)
        assert.are.same({ "Contact not found" },
          T:invalid("POST", "/v1/contacts?upsert=1", { id = 9, email = "n@example.com" }))
      end)

      it("with keyfield=remote_id updates the match or inserts", function()
        T:insert({ email = "r@example.com", remote_id = "CRM-1" })
        local out = T:ok("POST", "/v1/contacts?upsert=1&keyfield=remote_id", { remote_id = "CRM-1", city = "Paris" })
        assert.are.equal("Updated", out.result_text)
        out = T:ok("POST", "/v1/contacts?upsert=1&keyfield=remote_id", { remote_id = "CRM-2", email = "s@example.com" })
        assert.are.equal("Created", out.result_text)
        assert.are.equal("CRM-2", out.result_data.remote_id)
      end)

      it("inserting needs an email", function()
        assert.are.same({ "email is required" }, T:invalid("POST", "/v1/contacts?upsert=1", { first_name = "X" }))
      end)

      it("adds interests and never drops existing ones", function()
        T:insert({ email = "u@example.com", interests = { "International", "Consumer" } })
        local out = T:ok("POST", "/v1/contacts?upsert=1", { email = "u@example.com", interests = { "Specials" } })
        assert.are.same({ "International", "Consumer", "Specials" }, out.result_data.interests)
      end)

      it("takes upsert=true as well and upsert=0 as a plain insert", function()
        T:insert({ email = "u@example.com" })
        assert.are.equal("Updated", T:ok("POST", "/v1/contacts?upsert=true", { email = "u@example.com" }).result_text)
        helper.assert_error(T:invalid("POST", "/v1/contacts?upsert=0", { email = "u@example.com" }), "already exists")
      end)
    end)

    describe("delete", function()
      it("deletes a contact, which then reads as null", function()
        T:insert({ email = "a@example.com" })
        T:ok("DELETE", "/v1/contacts/1")
        assert.is_nil(T:get(1))
        assert.are.same({ "Contact not found" }, T:invalid("DELETE", "/v1/contacts/1"))
      end)

      it("refuses contacts whose consent is Revoked or a spam status", function()
        T:insert({ email = "r@example.com", consent_status = "Revoked" })
        T:insert({ email = "s@example.com", consent_status = "External Spam Reported" })
        T:load({ { email = "e@example.com", consent_status = "Envoke Spam Reported" } })
        assert.are.same({ "A contact whose consent is 'Revoked' cannot be deleted" },
          T:invalid("DELETE", "/v1/contacts/1"))
        helper.assert_error(T:invalid("DELETE", "/v1/contacts/2"), "'External Spam Reported' cannot be deleted")
        helper.assert_error(T:invalid("DELETE", "/v1/contacts/3"), "'Envoke Spam Reported' cannot be deleted")
        assert.are.equal(3, #T:contacts())
      end)
    end)
  end)
end)
