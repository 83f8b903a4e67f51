-- Answers a broken or malicious server could give to the calls beyond
-- contacts, from a real nginx on 127.0.0.1: every id that could later go into
-- a path is checked when it arrives (a `protocol` error, never a raise), shapes
-- that are not what Envoke documents are `protocol` errors, and a secret the
-- server echoes in a bulk failure is redacted.
local envoke = require "envoke"
local nginx = require "sandbox.nginx"

local KEY = "SECRETKEY123"

-- One location per scenario: the client's base URL is srv.url .. "/<scenario>".
local ANSWERS = {
  { "list-bad-id", "/v2/tags", 200, '[{"id":"1","name":"ok"},{"id":"../x","name":"t"}]' },
  { "list-object", "/v2/tags", 200, '{"a":1}' },
  { "list-scalars", "/v2/subscriptions", 200, '[1,"x"]' },
  { "get-bad-id", "/v2/tags/5", 200, '{"id":"a/b","name":"t"}' },
  { "get-null", "/v2/customfields/5", 200, "null" },
  { "create-bad-id", "/v2/tags", 200,
    '{"success":true,"result_text":"Created","result_data":{"id":"1?x","name":"t"}}' },
  { "no-success", "/v2/tags/5", 200, '{"result_data":{"id":"5"}}' },
  { "hook-bad-id", "/v1/hooks.json", 201, '{"id":"0123456789abcdef0123456789abcde/"}' },
  { "hooks-bad-id", "/v1/hooks.json", 200, '[{"id":"zz","type":"new_contact","url":"http://x"}]' },
  { "dup-bad-id", "/v1/hooks.json", 400, '{"success":false,"result_text":"exists","result_data":{"id":"../../x"}}' },
  { "bulk-bad", "/v2/tags/5/contacts", 200, '{"success":true,"result_data":{"processed":"x"}}' },
  { "bulk-echo", "/v2/tags/5/contacts", 400, '{"success":false,"result_text":"Error setting to contacts",'
      .. '"result_data":{"processed":2,"failed":[{"contact_id":"1","reason":"key ' .. KEY .. ' refused"}],'
      .. '"not_found":["' .. KEY .. '@example.com"]}}' },
  { "send-bad-id", "/v1/send", 200, '{"success":true,"result_text":"Message is sending","result_data":{"id":"x/y"}}' },
  { "message-bad-id", "/v2/messages/7/cancel", 200, '{"success":true,"result_data":{"id":"7/../8"}}' },
  { "report-bad", "/v1/reports/emailActivityMetrics", 200, '[{"message_id":"../1","sends":1}]' },
  { "legacy-garbage", "/api/v4legacy/send/SendEmails", 200, "Fatal error: nothing here" },
  { "legacy-count", "/api/v4legacy/send/SendEmails", 200, 'Warning: x<br>[{"result_value":"true"}]' },
  { "names-map", "/v1/customfields", 200, '{"2":"shoe","1":"barcode"}' },
  { "names-bad", "/v1/customfields", 200, '[{"label":"no key"}]' },
}

describe("resources: hostile answers", function()
  local srv
  setup(function()
    local conf = { "    default_type application/json;" }
    for _, a in ipairs(ANSWERS) do
      conf[#conf + 1] = ("    location = /%s%s { return %d '%s'; }"):format(a[1], a[2], a[3], a[4])
    end
    srv = nginx.start{ server = table.concat(conf, "\n") .. "\n" }
  end)
  teardown(function() if srv then srv:stop() end end)

  local function client(scenario)
    return envoke.new{ base_url = srv.url .. "/" .. scenario, api_id = "id", api_key = KEY, retries = 0 }
  end

  local function protocol(pattern, result, err)
    assert.is_nil(result)
    assert.are.equal("protocol", err.kind, tostring(err))
    if pattern then assert.truthy(tostring(err):find(pattern), tostring(err)) end
  end

  it("refuses an item whose id could change a later path, in lists, reads and writes", function()
    protocol("tag 2 of the list", client("list-bad-id").tags:list())
    protocol("its id must be", client("get-bad-id").tags:get(5))
    protocol("result_data", client("create-bad-id").tags:create{ name = "t" })
    protocol("32 hexadecimal", client("hook-bad-id").hooks:create{ type = "new_contact", url = "http://x.example/" })
    protocol("hook 1 of the list", client("hooks-bad-id").hooks:list())
    protocol(nil, client("send-bad-id"):send{ name = "abc", subject = "abcdef", sender = "A B <a@b.co>",
                                         recipients = { "a@b.co" }, html = "x" })
    protocol(nil, client("message-bad-id").messages:cancel(7))
    protocol("invalid message_id", client("report-bad").reports:email_activity{})
  end)

  it("refuses shapes Envoke does not answer", function()
    protocol("other than an array", client("list-object").tags:list())
    protocol("not an object", client("list-scalars").subscriptions:list())
    protocol("'success': true", client("no-success").tags:update(5, { name = "x" }))
    protocol("processed", client("bulk-bad").tags:add_contacts(5, { ids = { 1 } }))
    protocol("no JSON array", client("legacy-garbage"):send_emails{ { to_email = "a@b.co", campaign_name = "c" } })
    protocol("1 results for 2", client("legacy-count"):send_emails{ { to_email = "a@b.co", campaign_name = "c" },
                                                 { to_email = "b@b.co", campaign_name = "c" } })
    protocol("has no name", client("names-bad"):custom_field_names())
  end)

  it("ends a paging walk with false, err once", function()
    local seen = {}
    for item, err in client("list-bad-id").tags:each() do
      seen[#seen + 1] = item == false and err.kind or item
    end
    assert.are.same({ "protocol" }, seen)
  end)

  it("reads null as not found, and a duplicate naming an unsafe id as a plain validation error", function()
    local none, err = client("get-null").custom_fields:get("5")
    assert.is_nil(none)
    assert.are.equal("not_found", err.kind)
    local _, dup = client("dup-bad-id").hooks:create{ type = "new_contact", url = "http://x.example/" }
    assert.are.equal("validation", dup.kind)
    assert.is_nil(dup.existing_id)
  end)

  it("reads custom field names from an id -> name map", function()
    assert.are.same({ "barcode", "shoe" }, assert(client("names-map"):custom_field_names()))
  end)

  it("redacts a secret echoed in a bulk failure, in details and in the merged result", function()
    local r, err = client("bulk-echo").tags:add_contacts(5, { ids = { 1, 2 } })
    assert.is_nil(r)
    assert.are.equal("key *** refused", err.details.failed[1].reason)
    assert.are.equal("***@example.com", err.details.not_found[1])
    assert.are.equal("key *** refused", err.result.failed[1].reason)
    assert.are.same({ "***@example.com" }, err.result.not_found)
    assert.falsy(tostring(err):find(KEY, 1, true))
  end)
end)
