-- GET /v1/contacts: filter, sort, limit, skip, fields (API.md §3).

local helper = require("spec.sandbox.helper").init(describe, setup, teardown, before_each)

local function encode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- A query string from {key, value} pairs, percent-encoded as a client sends it.
local function q(pairs_list)
  local out = {}
  for _, p in ipairs(pairs_list) do out[#out + 1] = encode(p[1]) .. "=" .. encode(p[2]) end
  return table.concat(out, "&")
end

local PEOPLE = {
  { first_name = "Ann", last_name = "Zed", city = "Toronto", language = "en", barcode = "A-100",
    interests = { "International" }, status = "Express", effective = "2037-01-10T10:00:00Z" },
  { first_name = "Bob", last_name = "Young", city = "Ottawa", language = "fr", barcode = "B-200",
    interests = { "Consumer" }, status = "Implied - Inquiry", effective = "2037-02-10T10:00:00Z" },
  { first_name = "Cy", last_name = "Xu", city = "Toronto", language = "fr", barcode = "C-300",
    interests = { "International", "Consumer" }, status = "Implied - Transaction", effective = "2037-03-10T10:00:00Z" },
  { first_name = "Dee", last_name = "Wu", city = "Montreal", language = "en", barcode = "D-400",
    interests = {}, status = "Not provided" },
  { first_name = "eve", last_name = "Vo", city = "Ottawa", language = "es", barcode = "E-500",
    interests = { "Specials" }, status = "Implied - No Expiry", effective = "2037-05-10T10:00:00Z" },
}

describe("sandbox list", function()
  helper.each_transport(function(T)
    local function list(query)
      return T:ok("GET", "/v1/contacts" .. (query and query ~= "" and "?" .. query or ""))
    end

    local function ids(result)
      local out = {}
      for i, c in ipairs(result) do out[i] = c.id end
      return out
    end

    local function list_ids(query) return ids(list(query)) end

    describe("paging", function()
      before_each(function()
        for i = 1, 25 do T:insert({ email = ("p%02d@example.com"):format(i) }) end
      end)

      it("answers 10 contacts by default, ordered by id", function()
        assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, list_ids())
      end)

      it("takes limit up to 100 and skip", function()
        assert.are.same({ 4, 5, 6 }, list_ids("limit=3&skip=3"))
        assert.are.equal(25, #list("limit=100"))
        assert.are.same({}, list("skip=25"))
        assert.are.same({ 25 }, list_ids("skip=24&limit=100"))
      end)

      it("pages with skip until a short page", function()
        local seen, skip = {}, 0
        while true do
          local page = list("limit=7&skip=" .. skip)
          for _, c in ipairs(page) do seen[#seen + 1] = c.id end
          if #page < 7 then break end
          skip = skip + 7
        end
        assert.are.equal(25, #seen)
        for i = 1, 25 do assert.are.equal(i, seen[i]) end
      end)

      it("refuses a limit over 100 or under 1, and a bad skip, all in one 400", function()
        assert.are.same({ "limit must be an integer from 1 to 100" }, T:invalid("GET", "/v1/contacts?limit=101"))
        assert.are.same({ "limit must be an integer from 1 to 100" }, T:invalid("GET", "/v1/contacts?limit=0"))
        assert.are.same({ "limit must be an integer from 1 to 100", "skip must be an integer from 0 up" },
          T:invalid("GET", "/v1/contacts?limit=ten&skip=-1"))
      end)
    end)

    describe("filters, sort and fields", function()
      before_each(function()
        for i, p in ipairs(PEOPLE) do
          local body = {
            email = p.first_name:lower() .. "@example.com", first_name = p.first_name, last_name = p.last_name,
            city = p.city, language = p.language, custom_fields = { barcode = p.barcode }, interests = p.interests,
            consent_status = p.status, consent_effective_date = p.effective,
          }
          if p.status ~= "Not provided" then body.consent_description = "reason " .. i end
          T:insert(body)
        end
      end)

      it("filters by equality, text case-insensitively", function()
        assert.are.same({ 1, 3 }, list_ids(q { { "filter[city]", "toronto" } }))
        assert.are.same({ 2 }, list_ids(q { { "filter[email]", "BOB@example.com" } }))
        assert.are.same({ 2 }, list_ids(q { { "filter[email]", "bob@example.com" }, { "filter[city]", "Ottawa" } }))
        assert.are.same({}, list_ids(q { { "filter[email]", "bob@example.com" }, { "filter[city]", "Toronto" } }))
      end)

      it("filters by id, as Envoke's own code looks a contact up", function()
        assert.are.same({ 3 }, list_ids("filter[id]=3"))
        assert.are.same({ 4, 5 }, list_ids(q { { "filter[id][$gt]", "3" } }))
        assert.are.same({ 1, 2, 3 }, list_ids(q { { "filter[id][$lte]", "3" } }))
        assert.are.same({ 2, 3 }, list_ids(q { { "filter[id][$gte]", "2" }, { "filter[id][$lt]", "4" } }))
      end)

      it("takes $ne, $in and $regex", function()
        assert.are.same({ 2, 4, 5 }, list_ids(q { { "filter[city][$ne]", "Toronto" } }))
        assert.are.same({ 1, 5 },
          list_ids(q { { "filter[email][$in][]", "ann@example.com" }, { "filter[email][$in][]", "EVE@example.com" } }))
        assert.are.same({ 1, 2 }, list_ids(q { { "filter[first_name][$regex]", "^(ann|bob)$" } }))
        assert.are.same({ 3, 4, 5 }, list_ids(q { { "filter[last_name][$regex]", "^[u-x]" } }))
        assert.are.same({ 1, 2, 3, 4, 5 }, list_ids(q { { "filter[email][$regex]", "@example\\.com$" } }))
      end)

      it("compares consent_effective_date as a date-time and consent_expiry as a date", function()
        assert.are.same({ 3, 5 }, list_ids(q { { "filter[consent_effective_date][$gt]", "2037-02-10T10:00:00Z" } }))
        assert.are.same({ 2, 3, 5 },
          list_ids(q { { "filter[consent_effective_date][$gte]", "2037-02-10T05:00:00-05:00" } }))
        -- 4 was given "Not provided" explicitly, so its record is dated now.
        assert.are.same({ 1, 2, 4 }, list_ids(q { { "filter[consent_effective_date][$lt]", "2037-03-01" } }))
        assert.are.same({ 2 }, list_ids(q { { "filter[consent_expiry][$lte]", "2037-08-10" } }))
        assert.are.same({ 2 }, list_ids(q { { "filter[consent_expiry]", "2037-08-10" } }))
        assert.are.same({ 1, 4, 5 }, list_ids(q { { "filter[consent_expiry]", "" } }))
      end)

      it("filters custom fields by dot path and by nested brackets", function()
        assert.are.same({ 3 }, list_ids(q { { "filter[custom_fields.barcode]", "C-300" } }))
        assert.are.same({ 3 }, list_ids(q { { "filter[custom_fields][barcode]", "c-300" } }))
        assert.are.same({ 4, 5 }, list_ids(q { { "filter[custom_fields.barcode][$gt]", "C-300" } }))
        assert.are.same({ 1, 2 }, list_ids(q { { "filter[custom_fields.barcode][$regex]", "^[ab]-" } }))
      end)

      it("filters interests by name or id: any of the contact's", function()
        assert.are.same({ 1, 3 }, list_ids(q { { "filter[interests]", "International" } }))
        assert.are.same({ 2, 3 }, list_ids(q { { "filter[interests]", "4377" } }))
        assert.are.same({ 1, 3, 5 },
          list_ids(q { { "filter[interests][$in][]", "international" }, { "filter[interests][$in][]", "Specials" } }))
        assert.are.same({ 2, 4, 5 }, list_ids(q { { "filter[interests][$ne]", "International" } }))
      end)

      it("filters consent_status in either spelling, by what the contact reads as", function()
        assert.are.same({ 5 }, list_ids(q { { "filter[consent_status]", "Implied - No Expiry" } }))
        assert.are.same({ 4 }, list_ids(q { { "filter[consent_status]", "Not Provided" } }))
      end)

      it("combines filters with $or and $and, nested", function()
        assert.are.same({ 1, 2 }, list_ids(q {
          { "filter[$or][0][first_name]", "Ann" }, { "filter[$or][1][first_name]", "Bob" },
        }))
        assert.are.same({ 1, 5 }, list_ids(q {
          { "filter[$or][0][$and][0][city]", "Toronto" }, { "filter[$or][0][$and][1][language]", "en" },
          { "filter[$or][1][language]", "es" },
        }))
        assert.are.same({ 3 }, list_ids(q {
          { "filter[$and][0][city]", "Toronto" }, { "filter[$and][1][$or][0][language]", "fr" },
          { "filter[$and][1][$or][1][language]", "es" },
        }))
      end)

      it("takes a filter given as a JSON object too", function()
        assert.are.same({ 2 }, list_ids(q { { "filter", '{"city":"Ottawa","language":{"$ne":"es"}}' } }))
      end)

      it("sorts by one or more fields, ASC or DESC in any case, ties by id", function()
        assert.are.same({ 5, 4, 3, 2, 1 }, list_ids("sort[id]=DESC"))
        assert.are.same({ 5, 4, 3, 2, 1 }, list_ids("sort[last_name]=asc"))
        assert.are.same({ 5, 4, 3, 2, 1 }, list_ids("sort[first_name]=DESC")) -- "eve" sorts as "Eve"
        assert.are.same({ 4, 2, 5, 1, 3 }, list_ids("sort[city]=ASC"))
        assert.are.same({ 4, 5, 2, 3, 1 }, list_ids("sort[city]=ASC&sort[first_name]=DESC"))
        assert.are.same({ 4, 1, 2, 3, 5 }, list_ids("sort[consent_effective_date]=ASC"))
        assert.are.same({ 5, 4, 3, 2, 1 }, list_ids("sort[custom_fields.barcode]=DESC"))
      end)

      it("answers only the fields asked for, in the seed's order", function()
        local res = T:call("GET", "/v1/contacts?fields=email,id,interests&limit=2")
        assert.are.equal('[{"id":1,"email":"ann@example.com","interests":["International"]},'
          .. '{"id":2,"email":"bob@example.com","interests":["Consumer"]}]', res.body)
        res = T:call("GET", "/v1/contacts/4?fields=" .. encode("first_name, custom_fields"))
        assert.are.equal('{"first_name":"Dee","custom_fields":{"barcode":"D-400"}}', res.body)
      end)

      it("answers 400 for unknown fields, operators, sorts and bad values, all at once", function()
        assert.are.same({ "filter: unknown field 'nickname'" }, T:invalid("GET", "/v1/contacts?filter[nickname]=x"))
        local function bad(pairs_list) return T:invalid("GET", "/v1/contacts?" .. q(pairs_list)) end
        assert.are.same({ "filter on city: unknown operator '$like'" }, bad { { "filter[city][$like]", "x" } })
        assert.are.same({ "filter: 'shoe' is not a custom field of this account" },
          T:invalid("GET", "/v1/contacts?filter[custom_fields.shoe]=9"))
        helper.assert_error(bad { { "filter[city][$regex]", "(" } }, "$regex unclosed (")
        helper.assert_error(bad { { "filter[consent_effective_date][$gt]", "soon" } },
          "is not a date or RFC 3339 date-time")
        helper.assert_error(bad { { "filter[interests][$gt]", "a" } }, "does not apply to a list")
        assert.are.same({
          "filter: unknown field 'nickname'", "sort[city] must be ASC or DESC",
          "limit must be an integer from 1 to 100", "fields: unknown field(s) nick, consent_force_downgrade",
        }, bad { { "filter[nickname]", "x" }, { "sort[city]", "UP" }, { "limit", "500" },
          { "fields", "nick,consent_force_downgrade" } })
        assert.are.same({ "sort: cannot sort by 'interests'" }, T:invalid("GET", "/v1/contacts?sort[interests]=ASC"))
      end)

      it("gives up on a pathological $regex with a 400 instead of hanging", function()
        T:patch(1, { feedback = ("a"):rep(40) })
        local errors = T:invalid("GET", "/v1/contacts?" .. q { { "filter[feedback][$regex]", "(a*)*b" } })
        helper.assert_error(errors, "pattern too complex")
      end)
    end)
  end)
end)
