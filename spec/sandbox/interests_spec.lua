-- Interests (tags), subscriptions, mandatory consent and autoresponders
-- (API.md §6, the seed's field page).

local helper = require("spec.sandbox.helper").init(describe, setup, teardown, before_each)

describe("sandbox interests and autoresponders", function()
  helper.each_transport(function(T)
    local function nurture_states(id)
      for _, c in ipairs(T:contacts()) do
        if c.id == id then return c._sandbox.autoresponder_states end
      end
    end

    describe("interests", function()
      before_each(function() T:insert({ email = "a@example.com" }) end)

      it("sets interests from an array of names (each Set, none unset)", function()
        assert.are.same({ "International", "Consumer" },
          T:patch(1, { interests = { "International", "Consumer" } }).interests)
        assert.are.same({ "International", "Consumer", "Business Products" },
          T:patch(1, { interests = { "Business Products" } }).interests)
      end)

      it("sets and unsets from an object keyed by name", function()
        T:patch(1, { interests = { "International", "Consumer" } })
        local c = T:patch(1,
          { interests = { International = "Set", Consumer = "Unset", ["Business Products"] = "Set" } })
        assert.are.same({ "International", "Business Products" }, c.interests)
      end)

      it("sets and unsets from an object keyed by id", function()
        local c = T:patch(1, { interests = { ["1235"] = "Set", ["4377"] = "Set" } })
        assert.are.same({ "International", "Consumer" }, c.interests)
        c = T:patch(1, { interests = { ["4377"] = "Unset" } })
        assert.are.same({ "International" }, c.interests)
      end)

      it("takes the actions in any case (Envoke's own code sends lowercase set)", function()
        assert.are.same({ "Specials" }, T:patch(1, { interests = { Specials = "set" } }).interests)
        assert.are.same({}, T:patch(1, { interests = { Specials = "UNSET" } }).interests)
      end)

      it("matches names case-insensitively and answers the catalogue's spelling", function()
        assert.are.same({ "Business Products" }, T:patch(1, { interests = { "business products" } }).interests)
      end)

      it("writes subscriptions and mandatory consent through interests, by name or id", function()
        local c = T:patch(1,
          { interests = { ["Newsletter Subscription"] = "Set", Specials = "Set", ["Mandatory consent"] = "Set" } })
        assert.are.same({ "Mandatory consent", "Newsletter Subscription", "Specials" }, c.interests)
        c = T:patch(1, { interests = { ["2345"] = "Unset", ["83293"] = "Unset", ["4557"] = "Set" } })
        assert.are.same({ "Specials" }, c.interests)
        assert.are.same({ "Specials", "Newsletter" }, T:patch(1, { interests = { "Newsletter" } }).interests)
      end)

      it("answers [] when a contact has none", function()
        local res = T:call("GET", "/v1/contacts/1")
        assert.matches('"interests":%[%]', res.body)
        T:patch(1, { interests = { "Consumer" } })
        res = T:call("PATCH", "/v1/contacts/1", { interests = { Consumer = "Unset" } })
        assert.matches('"interests":%[%]', res.body)
      end)

      it("ignores Unset of an interest the contact does not have", function()
        assert.are.same({}, T:patch(1, { interests = { Consumer = "Unset" } }).interests)
      end)

      it("answers 400 naming an unknown interest, and changes nothing", function()
        local errors = T:invalid("PATCH", "/v1/contacts/1", { interests = { "International", "Astrology" } })
        assert.are.same({ "interests names an unknown interest, subscription or mandatory consent: 'Astrology'" },
          errors)
        errors = T:invalid("PATCH", "/v1/contacts/1", { interests = { ["999"] = "Set" } })
        helper.assert_error(errors, "'999'")
        assert.are.same({}, T:get(1).interests)
      end)

      it("answers 400 for a value other than Set or Unset", function()
        local errors = T:invalid("PATCH", "/v1/contacts/1", { interests = { International = "Dequeue" } })
        assert.are.same(
          { "interests has values that are not valid: 'International' must be Set, Unset, got 'Dequeue'" },
          errors)
      end)

      it("sets interests on insert too", function()
        local c = T:insert({ email = "b@example.com", interests = { Consumer = "Set" } })
        assert.are.same({ "Consumer" }, c.interests)
      end)
    end)

    describe("autoresponders", function()
      before_each(function()
        T:insert(helper.express({ email = "a@example.com" }))
      end)

      it("sets nurtures from an array of names, queued", function()
        local c = T:patch(1, { autoresponders = { "Marketing Sequence 1", "Whitepaper Download" } })
        assert.are.same({ "Marketing Sequence 1", "Whitepaper Download" }, c.autoresponders)
        assert.are.same({ ["Marketing Sequence 1"] = "queued", ["Whitepaper Download"] = "queued" }, nurture_states(1))
      end)

      it("Dequeue keeps the nurture on the record but stops its messages; Set queues it again", function()
        T:patch(1, { autoresponders = { "Marketing Sequence 1", "Whitepaper Download" } })
        local c = T:patch(1,
          { autoresponders = { ["Marketing Sequence 1"] = "Dequeue", ["Whitepaper Download"] = "Set" } })
        assert.are.same({ "Marketing Sequence 1", "Whitepaper Download" }, c.autoresponders)
        assert.are.same({ ["Marketing Sequence 1"] = "dequeued", ["Whitepaper Download"] = "queued" },
          nurture_states(1))
        T:patch(1, { autoresponders = { ["45756"] = "set" } })
        assert.are.equal("queued", nurture_states(1)["Marketing Sequence 1"])
      end)

      it("Unset removes the nurture from the record, by name or id, any case", function()
        T:patch(1, { autoresponders = { "Marketing Sequence 1", "Whitepaper Download" } })
        assert.are.same({ "Marketing Sequence 1" },
          T:patch(1, { autoresponders = { ["32646"] = "unset" } }).autoresponders)
        assert.are.same({}, T:patch(1, { autoresponders = { ["Marketing Sequence 1"] = "UNSET" } }).autoresponders)
      end)

      it("answers 400 for an unknown nurture or action", function()
        assert.are.same({ "autoresponders names an unknown nurture: 'Drip'" },
          T:invalid("PATCH", "/v1/contacts/1", { autoresponders = { "Drip" } }))
        helper.assert_error(
          T:invalid("PATCH", "/v1/contacts/1", { autoresponders = { ["Whitepaper Download"] = "Pause" } }),
          "'Whitepaper Download' must be Set, Unset, Dequeue, got 'Pause'")
      end)

      it("are not set on contacts whose consent does not allow sending", function()
        local c = T:insert({ email = "np@example.com", autoresponders = { "Whitepaper Download" } })
        assert.are.same({}, c.autoresponders)
        T:insert({ email = "rv@example.com", consent_status = "Revoked" })
        assert.are.same({}, T:patch(3, { autoresponders = { "Whitepaper Download" } }).autoresponders)
        local log = T:log()
        assert.matches("consent does not allow sending", log[#log].notes[1])
      end)

      it("are not set on a contact whose consent has expired", function()
        T:insert({ email = "ex@example.com", consent_status = "Implied - Inquiry", consent_description = "form",
          consent_effective_date = "2017-10-27T18:19:57Z" })
        assert.are.same({}, T:patch(2, { autoresponders = { "Whitepaper Download" } }).autoresponders)
      end)

      it("go with a sendable consent sent in the same request", function()
        local c = T:insert(helper.express({ email = "n@example.com", autoresponders = { "Whitepaper Download" } }))
        assert.are.same({ "Whitepaper Download" }, c.autoresponders)
      end)

      it("answer [] when a contact has none", function()
        local res = T:call("GET", "/v1/contacts/1")
        assert.matches('"autoresponders":%[%]', res.body)
      end)
    end)
  end)
end)
