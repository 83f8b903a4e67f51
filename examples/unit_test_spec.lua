-- Your own unit tests through the in-process transport (an in-process sandbox:
-- no server, no network).
-- Run with: make && busted examples/unit_test_spec.lua   (the checkout's .busted
-- picks lua5.4 and the build/5.4 that `make` makes)
local envoke = require "envoke"

describe("my CRM sync", function()
  local client
  before_each(function() client = envoke.new{ transport = "in_process" } end)

  it("subscribes a new contact with consent", function()
    local c = assert(client:contact{ email = "unit@example.com" }
      :interest("Newsletter"):consent("Express", "Ticked the box"):insert())
    assert.are.equal("Express", c.consent_status)
    assert.are.same({ "Newsletter" }, c.interests)
  end)

  it("sees the API's errors as values", function()
    assert(client:contact{ email = "twice@example.com" }:insert())
    local again, err = client:contact{ email = "twice@example.com" }:insert()
    assert.is_nil(again)
    assert.are.equal("duplicate", err.kind)
  end)
end)
