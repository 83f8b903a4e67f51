-- Duplicate emails and the account setting that allows them with remote_id
-- (API.md §7, the seed's "Using a different key field").

local helper = require("spec.sandbox.helper").init(describe, setup, teardown, before_each)

describe("sandbox duplicate emails", function()
  helper.each_transport(function(T)
    it("are refused by default, on insert, update and upsert-insert", function()
      T:insert({ email = "a@example.com", remote_id = "R1" })
      T:insert({ email = "b@example.com", remote_id = "R2" })
      helper.assert_error(T:invalid("POST", "/v1/contacts", { email = "A@example.com" }), "already exists")
      helper.assert_error(T:invalid("PATCH", "/v1/contacts/2", { email = "a@example.com" }), "already exists")
      helper.assert_error(T:invalid("PATCH", "/v1/contacts?keyfield=remote_id",
        { remote_id = "R2", email = "a@example.com" }),
        "already exists")
      helper.assert_error(T:invalid("POST", "/v1/contacts?upsert=1&keyfield=remote_id",
        { remote_id = "R3", email = "a@example.com" }),
        "already exists")
      assert.is_false(T:ok("GET", "/v1/settings").allow_duplicate_emails)
    end)

    describe("with the account setting on", function()
      before_each(function()
        T:settings({ allow_duplicate_emails = true })
        T:insert({ email = "shared@example.com", remote_id = "436D-SF92-J4G5", first_name = "One" })
        T:insert({ email = "shared@example.com", remote_id = "CRM-2", first_name = "Two" })
      end)

      it("lets two contacts share an email, and GET /v1/settings shows it", function()
        assert.are.equal(2, #T:ok("GET", "/v1/contacts?filter[email]=shared@example.com"))
        assert.is_true(T:ok("GET", "/v1/settings").allow_duplicate_emails)
      end)

      it("updates the right one with keyfield=remote_id", function()
        local out = T:ok("PATCH", "/v1/contacts?keyfield=remote_id",
          { remote_id = "CRM-2", email = "shared@example.com", first_name = "John" })
        assert.are.equal(2, out.result_data.id)
        assert.are.equal("One", T:get(1).first_name)
        assert.are.equal("John", T:get(2).first_name)
      end)

      it("inserts another with upsert and a new remote_id", function()
        local out = T:ok("POST", "/v1/contacts?upsert=1&keyfield=remote_id",
          { remote_id = "CRM-3", email = "shared@example.com" })
        assert.are.equal("Created", out.result_text)
        assert.are.equal(3, #T:contacts())
      end)

      it("refuses to guess when an email key matches several contacts", function()
        local errors = T:invalid("PATCH", "/v1/contacts", { email = "shared@example.com", first_name = "X" })
        assert.are.same(
          { "more than one contact has email 'shared@example.com': identify it with id or remote_id" }, errors)
        errors = T:invalid("POST", "/v1/contacts?upsert=1", { email = "shared@example.com", first_name = "X" })
        helper.assert_error(errors, "more than one contact has email")
      end)

      it("still keeps remote_id unique", function()
        assert.are.same({ "A contact with remote_id 'CRM-2' already exists" },
          T:invalid("POST", "/v1/contacts", { email = "x@example.com", remote_id = "CRM-2" }))
      end)

      it("goes back off on reset", function()
        T:reset()
        assert.is_false(T:ok("GET", "/v1/settings").allow_duplicate_emails)
      end)
    end)
  end)

  describe("set in the catalogue", function()
    helper.each_transport(function(T)
      it("allows duplicates from the start", function()
        T:insert({ email = "a@example.com" })
        T:insert({ email = "a@example.com" })
        assert.are.equal(2, #T:contacts())
        assert.are.equal("Test Account", T:ok("GET", "/v1/settings").name)
      end)
    end, { catalogue = { settings = { name = "Test Account", allow_duplicate_emails = true } } })
  end)
end)
