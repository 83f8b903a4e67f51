-- The seed pages' examples, run against the sandbox: the curl commands of
-- "Contact API Update" exactly as written (only the host and the
-- credentials changed; HTTPS verified through CURL_CA_BUNDLE), and the JSON
-- examples of the fields page sent as update bodies.

local sandbox_server = require "sandbox_server"
local shell = require "sandbox.shell"
local cjson = require "cjson.safe"

-- Copied verbatim from seed-contact-api-update.txt, in page order.
-- luacheck: push no max line length
local SEED_CURL = {
  by_id = [[curl -X PATCH -u API_ID:API_KEY -d "{\"province\":\"MB\",\"city\":\"Winnipeg\"}" "https://e1.envoke.com/v1/contacts/1234"]],
  by_email = [[curl -X PATCH -u API_ID:API_KEY -d "{\"email\":\"example@api.com\",\"first_name\":\"UPDATED\"}" "https://e1.envoke.com/v1/contacts"]],
  by_remote_id = [[curl -X PATCH -u API_ID:API_KEY -d "{\"remote_id\":\"436D-SF92-J4G5\", \"email\":\"new-contact@api-testing.com\",\"first_name\":\"John\"}" "https://e1.envoke.com/v1/contacts?keyfield=remote_id"]],
  clear = [[curl -X PATCH -u API_ID:API_KEY -d "{\"email\":\"example@api.com\",\"first_name\":\"\"}" "https://e1.envoke.com/v1/contacts?write_empty_values=1"]],
}
-- luacheck: pop

-- Where the project keeps the seed pages (beside the repository).
local SEED_FILE = "../shared/envoke/seed-contact-api-update.txt"

describe("the seed pages' examples", function()
  local srv
  setup(function() srv = sandbox_server.start { tls = true } end)
  teardown(function() srv:stop() end)
  before_each(function() srv:reset() end)

  -- Runs a seed command with only the host and credentials swapped.
  local function run(command, base)
    local cmd = command:gsub("API_ID:API_KEY", srv.api_id .. ":" .. srv.api_key, 1)
      :gsub("https://e1%.envoke%.com", base or srv.tls_url)
    local out, code = shell.run("CURL_CA_BUNDLE=" .. shell.quote(srv.ca_file) .. " " .. cmd .. " 2>/dev/null")
    assert.are.equal(0, code, "curl failed: " .. cmd .. "\n" .. out)
    local answer = cjson.decode(out)
    assert.is_table(answer, out)
    return answer
  end

  local function contact(id)
    local _, _, body = srv:request("GET", ("/v1/contacts/%d"):format(id))
    return cjson.decode(body)
  end

  it("are the page's commands, unchanged", function()
    local page = shell.read_file(SEED_FILE)
    if not page then
      pending("seed page not found at " .. SEED_FILE)
      return
    end
    for name, command in pairs(SEED_CURL) do
      assert.truthy(page:find(command, 1, true), name .. " is not on the seed page as written")
    end
  end)

  describe("Contact API Update", function()
    it("updates the contact with id 1234: province MB, city Winnipeg", function()
      srv:load({
        { id = 1234, email = "contact-1234@example.com", province = "ON", city = "Toronto", first_name = "Jo" },
      })
      local answer = run(SEED_CURL.by_id)
      assert.is_true(answer.success)
      assert.are.equal("Updated", answer.result_text)
      local c = contact(1234)
      assert.are.equal("MB", c.province)
      assert.are.equal("Winnipeg", c.city)
      assert.are.equal("Jo", c.first_name)
    end)

    it("updates a contact found by the email in the body", function()
      srv:load({ { id = 7, email = "example@api.com", first_name = "Original" }, { id = 8, email = "other@api.com" } })
      local answer = run(SEED_CURL.by_email)
      assert.is_true(answer.success)
      assert.are.equal(7, answer.result_data.id)
      assert.are.equal("UPDATED", contact(7).first_name)
      assert.are.equal("", contact(8).first_name)
    end)

    it("updates a contact found by remote_id with keyfield=remote_id", function()
      srv:load({ { id = 3, email = "old@api-testing.com", remote_id = "436D-SF92-J4G5" } })
      local answer = run(SEED_CURL.by_remote_id)
      assert.is_true(answer.success)
      local c = contact(3)
      assert.are.equal("new-contact@api-testing.com", c.email)
      assert.are.equal("John", c.first_name)
    end)

    it("with keyfield=remote_id, lets two contacts share an email once the account allows it", function()
      srv:load({ { id = 3, email = "old@api-testing.com", remote_id = "436D-SF92-J4G5" },
        { id = 4, email = "new-contact@api-testing.com", remote_id = "OTHER-CRM-ID" } })
      local refused = run(SEED_CURL.by_remote_id)
      assert.is_false(refused.success)
      srv:settings({ allow_duplicate_emails = true }) -- what Envoke support turns off
      local answer = run(SEED_CURL.by_remote_id)
      assert.is_true(answer.success)
      assert.are.equal("new-contact@api-testing.com", contact(3).email)
      assert.are.equal("new-contact@api-testing.com", contact(4).email)
    end)

    it("clears first_name with write_empty_values=1, and ignores the blank without it", function()
      srv:load({ { id = 9, email = "example@api.com", first_name = "Keep" } })
      local without = SEED_CURL.clear:gsub("%?write_empty_values=1", "")
      run(without)
      assert.are.equal("Keep", contact(9).first_name)
      local answer = run(SEED_CURL.clear)
      assert.is_true(answer.success)
      assert.are.equal("", contact(9).first_name)
    end)

    it("work the same over plain HTTP", function()
      srv:load({ { id = 1234, email = "contact-1234@example.com" } })
      run(SEED_CURL.by_id, srv.url)
      assert.are.equal("Winnipeg", contact(1234).city)
    end)
  end)

  describe("the fields page's JSON examples", function()
    local function patch(body)
      local status, _, text = srv:request("PATCH", "/v1/contacts/1", body)
      assert.are.equal(200, status, text)
      return cjson.decode(text).result_data
    end

    before_each(function()
      srv:load({ { id = 1, email = "fields@example.com", consent_status = "Express", consent_description = "web form",
        interests = { "Consumer", "Specials" } } })
    end)

    it("sets and unsets interests by name and by id, and in the array form", function()
      assert.are.same({ "Specials", "International" },
        patch('{"interests": {"International": "Set", "Consumer": "Unset"}}').interests)
      assert.are.same({ "Specials", "International", "Consumer" },
        patch('{"interests": ["International", "Consumer"]}').interests)
      assert.are.same({ "Specials", "International", "Business Products" },
        patch('{"interests": {"1236": "Set", "4377": "Unset"}}').interests)
    end)

    it("sets and unsets subscriptions and mandatory consent through interests", function()
      assert.are.same({ "Consumer", "Newsletter Subscription" },
        patch('{"interests": {"Newsletter Subscription": "Set", "Specials": "Unset"}}').interests)
      assert.are.same({ "Consumer", "Specials" },
        patch('{"interests": {"2345": "Unset", "4557": "Set"}}').interests)
      assert.are.same({ "Consumer", "Specials", "Mandatory consent" },
        patch('{"interests": {"Mandatory consent": "Set"}}').interests)
      assert.are.same({ "Consumer", "Specials" }, patch('{"interests": {"83293": "Unset"}}').interests)
    end)

    it("sets, dequeues and unsets autoresponders by name and by id, and in the array form", function()
      assert.are.same({ "Marketing Sequence 1", "Whitepaper Download" },
        patch('{"autoresponders": ["Marketing Sequence 1", "Whitepaper Download"]}').autoresponders)
      assert.are.same({ "Marketing Sequence 1", "Whitepaper Download" },
        patch('{"autoresponders": {"Marketing Sequence 1": "Dequeue", "Whitepaper Download": "Set"}}').autoresponders)
      local states = srv:contacts()[1]._sandbox.autoresponder_states
      assert.are.same({ ["Marketing Sequence 1"] = "dequeued", ["Whitepaper Download"] = "queued" }, states)
      assert.are.same({ "Marketing Sequence 1", "Whitepaper Download" },
        patch('{"autoresponders": {"45756": "Dequeue", "32646": "Set"}}').autoresponders)
    end)

    it("sets custom fields from the example object", function()
      assert.are.same({ custom_field_name1 = "Field Value 1" },
        patch('{"custom_fields": {"custom_field_name1": "Field Value 1"}}').custom_fields)
    end)

    it("answers the Envoke Contact Object's fields, in its order, without consent_force_downgrade, and date_created",
    function()
      local _, _, text = srv:request("GET", "/v1/contacts/1")
      local keys = {}
      for key in text:gsub('"custom_fields":%b{}', '"custom_fields":{}'):gmatch('"([%w_]+)":') do
        keys[#keys + 1] = key
      end
      assert.are.same({ "id", "external_id", "remote_id", "first_name", "last_name", "title", "email", "company",
        "phone", "address_1", "address_2", "city", "country", "province", "postal_code", "website", "language",
        "feedback",
        "consent_status", "consent_description", "consent_effective_date", "consent_expiry", "custom_fields",
        "interests", "autoresponders", "date_created" }, keys)
    end)

    it("loads the seed's contact object as it is written", function()
      srv:reset()
      local seed_object = [[{
"id": "1234", "external_id": "1234", "remote_id": "", "first_name": "John", "last_name": "Johnson",
"title": "Leading Leader", "email": "new-contact@api-testing.com", "company": "Envoke", "phone": "555-1234",
"address_1": "555 Brant Street", "address_2": "", "city": "Toronto", "country": "CA", "province": "ON",
"postal_code": "L1V 3X5", "website": "", "language": "en", "feedback": "", "consent_status": "Express",
"consent_description": "Express consent given on website homepage form.",
"consent_effective_date": "2017-10-27T18:19:57+00:00", "consent_expiry": "", "consent_force_downgrade": false,
"custom_fields": { "custom_field_name1": "Field Value 1" },
"interests": [ "Business Products", "International", "Consumer" ],
"autoresponders": [ "Marketing Sequence 1", "Whitepaper Download" ] }]]
      local status, _, text = srv:request("POST", "/_sandbox/contacts", "[" .. seed_object .. "]")
      assert.are.equal(200, status, text)
      local c = contact(1234)
      local expected = cjson.decode(seed_object)
      expected.id = 1234
      expected.consent_force_downgrade = nil
      assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", c.date_created) -- set when loaded
      c.date_created = nil
      assert.are.same(expected, c)
    end)
  end)
end)
