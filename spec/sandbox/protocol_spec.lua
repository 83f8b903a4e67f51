-- Transport-level rules: credentials, routes, methods, bodies, envelopes.

local helper = require("spec.sandbox.helper").init(describe, setup, teardown, before_each)
local sandbox_server = require "sandbox_server"
local Sandbox = require "envoke.sandbox"
local cjson = helper.cjson

describe("sandbox protocol", function()
  helper.each_transport(function(T)
    describe("credentials", function()
      it("answers 401 with the API.md envelope without credentials", function()
        local res = T:call("GET", "/v1/settings", nil, { authorization = false })
        assert.are.equal(401, res.status)
        assert.are.equal('{"success":false,"result_text":"Unauthorized","result_data":[]}', res.body)
        assert.are.equal("application/json", res.headers["content-type"])
        assert.matches("^Basic", res.headers["www-authenticate"])
      end)

      it("answers 401 for a wrong key, a wrong id, a malformed header and an unknown bearer token", function()
        for _, header in ipairs {
          sandbox_server.basic("sandbox", "wrong"), sandbox_server.basic("other", "sandbox"),
          "Basic !!!", "Bearer sandbox", "Digest x",
        } do
          local res = T:call("GET", "/v1/contacts", nil, { authorization = header })
          assert.are.equal(401, res.status, header)
          assert.are.same({ success = false, result_text = "Unauthorized", result_data = {} }, res.json)
        end
      end)

      it("checks credentials on every API route, writes included, and changes nothing", function()
        for _, r in ipairs { { "POST", "/v1/contacts" }, { "PATCH", "/v1/contacts/1" }, { "DELETE", "/v1/contacts/1" },
          { "GET", "/v1/interests" }, { "GET", "/v1/autoresponders" }, { "GET", "/v1/contacts/1" } } do
          local res = T:call(r[1], r[2], { email = "x@example.com" },
            { authorization = sandbox_server.basic("a", "b") })
          assert.are.equal(401, res.status, r[1] .. " " .. r[2])
        end
        assert.are.same({}, T:contacts())
      end)

      it("accepts the right credentials", function()
        local out = T:ok("GET", "/v1/settings")
        assert.are.equal("Envoke Sandbox", out.name)
      end)
    end)

    describe("routes", function()
      it("answers 404 with an envelope for an unknown route", function()
        for _, path in ipairs { "/v1/contact", "/v2/contacts", "/", "/v1/contacts/1/extra" } do
          local res = T:call("GET", path)
          assert.are.equal(404, res.status, path)
          assert.is_false(res.json.success)
          assert.are.equal("table", type(res.json.result_data.errors))
        end
      end)

      it("answers 405 with Allow for a method a route does not take", function()
        local res = T:call("PUT", "/v1/contacts", { email = "a@example.com" })
        assert.are.equal(405, res.status)
        assert.are.equal("GET, PATCH, POST", res.headers.allow)
        assert.is_false(res.json.success)
        res = T:call("POST", "/v1/contacts/5", {})
        assert.are.equal(405, res.status)
        assert.are.equal("DELETE, GET, PATCH", res.headers.allow)
        res = T:call("DELETE", "/v1/settings")
        assert.are.equal(405, res.status)
        assert.are.equal("GET", res.headers.allow)
      end)

      it("takes the seed's trailing slash on /contacts/", function()
        local list = T:ok("GET", "/v1/contacts/")
        assert.are.same({}, list)
      end)

      it("answers an empty list as [] and a missing contact as null", function()
        local res = T:call("GET", "/v1/contacts")
        assert.are.equal("[]", res.body)
        res = T:call("GET", "/v1/contacts/77")
        assert.are.equal(200, res.status)
        assert.are.equal("null", res.body)
      end)

      it("answers 400 for an id in the path that is not an id", function()
        for _, id in ipairs { "abc", "0", "4294967296", "1.5" } do
          local errors = T:invalid("GET", "/v1/contacts/" .. id)
          helper.assert_error(errors, "id in the path must be an integer from 1 to 4294967295")
        end
      end)
    end)

    describe("bodies", function()
      it("reads the body as JSON whatever the Content-Type (the seed's curl sends none)", function()
        local out = T:ok("POST", "/v1/contacts", '{"email":"a@example.com"}',
          { ["content-type"] = "application/x-www-form-urlencoded" })
        assert.are.equal("a@example.com", out.result_data.email)
      end)

      it("answers 400 for malformed JSON, listing the problem", function()
        local errors, res = T:invalid("POST", "/v1/contacts", '{"email": "a@example.com",')
        assert.are.equal("Malformed JSON", res.json.result_text)
        helper.assert_error(errors, "malformed JSON body")
        errors = T:invalid("PATCH", "/v1/contacts/1", "{'email': 1}")
        helper.assert_error(errors, "malformed JSON body")
      end)

      it("answers 400 for an empty body or one that is not an object", function()
        helper.assert_error(T:invalid("POST", "/v1/contacts", ""), "the request body is empty")
        helper.assert_error(T:invalid("POST", "/v1/contacts", "[1,2]"), "must be a JSON object")
        helper.assert_error(T:invalid("PATCH", "/v1/contacts/1", '"text"'), "must be a JSON object")
        helper.assert_error(T:invalid("POST", "/v1/contacts", "null"), "must be a JSON object")
      end)

      it("answers 413 for a body over 1 MiB, and takes one of exactly 1 MiB", function()
        local big = '{"feedback":"' .. ("x"):rep(1024 * 1024) .. '"}'
        local res = T:call("POST", "/v1/contacts", big)
        assert.are.equal(413, res.status)
        assert.is_false(res.json.success)
        helper.assert_error(res.json.result_data.errors, "limit is 1048576")
        local exact = '{"email":"big@example.com","feedback":"' .. ("x"):rep(1024 * 1024 - 41) .. '"}'
        assert.are.equal(1024 * 1024, #exact)
        res = T:call("POST", "/v1/contacts", exact)
        assert.are.equal(400, res.status) -- only too long a feedback: it was read and checked
        helper.assert_error(res.json.result_data.errors, "feedback is too long")
      end)

      it("answers every error as a JSON envelope", function()
        for _, r in ipairs { { "GET", "/nowhere" }, { "PUT", "/v1/contacts" }, { "POST", "/v1/contacts", "{" } } do
          local res = T:call(r[1], r[2], r[3])
          assert.are.equal("application/json", res.headers["content-type"])
          assert.is_table(res.json, res.body)
          assert.is_false(res.json.success)
          assert.is_string(res.json.result_text)
        end
      end)
    end)

    describe("envelopes", function()
      it("answers writes with success, result_text and the contact", function()
        local res = T:call("POST", "/v1/contacts", { email = "env@example.com" })
        assert.are.equal(200, res.status)
        assert.matches('^{"success":true,"result_text":"Created","result_data":{"id":1,', res.body)
        res = T:call("PATCH", "/v1/contacts/1", { city = "Toronto" })
        assert.are.equal("Updated", res.json.result_text)
        res = T:call("DELETE", "/v1/contacts/1")
        assert.are.equal('{"success":true,"result_text":"Deleted","result_data":[]}', res.body)
      end)

      it("answers validation failures with the API.md text and every problem", function()
        local errors, res = T:invalid("POST", "/v1/contacts", { first_name = ("x"):rep(21), language = "xx" })
        assert.are.equal(helper.VALIDATION_FAILED, res.json.result_text)
        assert.are.same({
          "email is required",
          "first_name is too long (21 characters, maximum 20)",
          "language is not one of en, fr, ar, zh, de, it, ja, ko, pt, ru, es",
        }, errors)
      end)
    end)

    describe("catalogue endpoints", function()
      it("GET /v1/interests maps ids to names of interests, subscriptions and mandatory consent", function()
        local out = T:ok("GET", "/v1/interests")
        assert.are.same({
          ["1235"] = "International", ["4377"] = "Consumer", ["1236"] = "Business Products",
          ["2344"] = "Newsletter", ["2345"] = "Newsletter Subscription", ["4557"] = "Specials",
          ["83293"] = "Mandatory consent",
        }, out)
      end)

      it("GET /v1/autoresponders maps ids to nurture names", function()
        assert.are.same({ ["45756"] = "Marketing Sequence 1", ["32646"] = "Whitepaper Download" },
          T:ok("GET", "/v1/autoresponders"))
      end)

      it("GET /v1/settings answers the account object", function()
        local out = T:ok("GET", "/v1/settings")
        assert.are.equal("Envoke Sandbox", out.name)
        assert.is_false(out.allow_duplicate_emails)
      end)
    end)
  end)

  describe("(in-process only)", function()
    it("answers an internal error as a 500 envelope without a trace, and records the trace", function()
      local sb = Sandbox.new()
      sb.store.all = function() error("boom in the store") end
      local auth = { authorization = sandbox_server.basic("sandbox", "sandbox") }
      local status, headers, body = sb:handle("GET", "/v1/contacts", "", auth)
      assert.are.equal(500, status)
      assert.are.equal("application/json", headers["content-type"])
      local out = cjson.decode(body)
      assert.is_false(out.success)
      assert.are.equal("Internal Server Error", out.result_text)
      assert.is_nil(body:find("boom", 1, true))
      assert.is_nil(body:find("traceback", 1, true))
      status, headers, body = sb:handle("GET", "/_sandbox/errors", "", {})
      assert.are.equal("application/json", headers["content-type"])
      assert.are.equal(200, status)
      assert.truthy(body:find("boom in the store", 1, true))
      assert.truthy(body:find("traceback", 1, true))
    end)

    it("accepts a configured bearer token and custom credentials", function()
      local sb = Sandbox.new { api_id = "id1", api_key = "key1", token = "tok" }
      assert.are.equal(200, (sb:handle("GET", "/v1/settings", "", { authorization = "Bearer tok" })))
      local function basic(id, key) return { authorization = sandbox_server.basic(id, key) } end
      assert.are.equal(200, (sb:handle("GET", "/v1/settings", "", basic("id1", "key1"))))
      assert.are.equal(401, (sb:handle("GET", "/v1/settings", "", basic("sandbox", "sandbox"))))
      assert.are.equal(401, (sb:handle("GET", "/v1/settings", "", { authorization = "Bearer other" })))
    end)

    it("takes the query from the path when none is given separately", function()
      local sb = Sandbox.new()
      local auth = { authorization = sandbox_server.basic("sandbox", "sandbox") }
      sb:handle("POST", "/v1/contacts", nil, auth, '{"email":"q@example.com"}')
      local _, _, body = sb:handle("GET", "/v1/contacts?fields=email", nil, auth)
      assert.are.equal('[{"email":"q@example.com"}]', body)
    end)

    it("raises from new() on an invalid catalogue", function()
      assert.has_error(function() Sandbox.new { catalogue = { interests = { { id = "x", name = "A" } } } } end)
      assert.has_error(function()
        Sandbox.new { catalogue = {
          interests = { { id = 1, name = "A" } }, subscriptions = { { id = 1, name = "B" } },
        } }
      end)
    end)
  end)
end)
