-- The sandbox core's own modules: JSON, query strings, regular expressions,
-- the catalogue, the store and its data file.

local json = require "envoke.sandbox.json"
local query = require "envoke.sandbox.query"
local regex = require "envoke.sandbox.regex"
local catalogue = require "envoke.sandbox.catalogue"
local store = require "envoke.sandbox.store"
local contact = require "envoke.sandbox.contact"
local Sandbox = require "envoke.sandbox"
local shell = require "sandbox.shell"
local cjson = require "cjson.safe"

describe("envoke.sandbox.json", function()
  it("encodes tagged empty arrays as [] and empty objects as {}", function()
    assert.are.equal("[]", json.encode(json.array()))
    assert.are.equal("{}", json.encode(json.object()))
    assert.are.equal("{}", json.encode({}))
    assert.are.equal('{"a":[],"b":{}}', json.encode({ a = json.array(), b = json.object() }))
  end)

  it("keeps the given key order, then the rest sorted", function()
    assert.are.equal('{"z":1,"a":2,"b":3,"c":4}',
      json.encode(json.object({ a = 2, z = 1, c = 4, b = 3 }, { "z", "a" })))
  end)

  it("writes integers without a fraction, escapes strings, keeps UTF-8", function()
    assert.are.equal("[1,4294967295,-3,0.5]", json.encode({ 1, 4294967295, -3, 0.5 }))
    assert.are.equal('"a\\"b\\\\c\\n\\u0001é"', json.encode('a"b\\c\n\1é'))
    assert.are.equal("null", json.encode(json.null))
    assert.are.equal("[true,false]", json.encode({ true, false }))
  end)

  it("round-trips through cjson", function()
    local value = { name = "Zoë", list = { 1, 2, { x = "y" } }, flag = false }
    assert.are.same(value, cjson.decode(json.encode(value)))
  end)

  it("refuses what JSON cannot hold", function()
    assert.has_error(function() json.encode(0 / 0) end)
    assert.has_error(function() json.encode(function() end) end)
  end)

  it("decodes, answering nil and a message for malformed text", function()
    assert.are.same({ a = { 1 } }, json.decode('{"a":[1]}'))
    local v, err = json.decode("{")
    assert.is_nil(v)
    assert.is_string(err)
  end)
end)

describe("envoke.sandbox.query", function()
  it("parses the bracket syntax, percent-encoded or not", function()
    local p = query.parse("filter%5Bemail%5D%5B%24in%5D%5B%5D=a%40b.c&filter[email][$in][]=d"
      .. "&sort[id]=DESC&limit=5&x=a+b")
    assert.are.same(
      { filter = { email = { ["$in"] = { "a@b.c", "d" } } }, sort = { id = "DESC" }, limit = "5", x = "a b" }, p)
  end)

  it("keeps the order of the parameters", function()
    local _, ordered = query.parse("sort[b]=ASC&sort[a]=DESC")
    assert.are.same({ "sort", "b" }, ordered[1].path)
    assert.are.same({ "sort", "a" }, ordered[2].path)
  end)

  it("reports a parameter that conflicts with an earlier one", function()
    local p, err = query.parse("filter[email]=a&filter[email][$ne]=b")
    assert.is_nil(p)
    assert.matches("conflicts", err)
  end)

  it("turns numbered tables into lists", function()
    assert.are.same({ "a", "b", "c" }, query.list({ ["2"] = "c", ["0"] = "a", ["1"] = "b" }))
    assert.are.same({ "x" }, query.list("x"))
    assert.is_nil(query.list({ a = 1 }))
  end)

  it("reads flags", function()
    for _, v in ipairs { "1", "true", "TRUE", "yes", "on" } do assert.is_true(query.flag(v)) end
    for _, v in ipairs { "0", "false", "", "no" } do assert.is_false(query.flag(v)) end
    assert.is_false(query.flag(nil))
  end)
end)

describe("envoke.sandbox.regex", function()
  local function find(pattern, s)
    local re = assert(regex.compile(pattern))
    return regex.find(re, s)
  end

  it("matches the common subset, case-insensitively", function()
    assert.is_true(find("^a.c$", "ABC"))
    assert.is_true(find("b+", "aabbb"))
    assert.is_true(find("^[a-c]+@ex\\.com$", "abc@ex.com"))
    assert.is_false(find("^[a-c]+@ex\\.com$", "abc@exxcom"))
    assert.is_true(find("x|y", "zzy"))
    assert.is_true(find("^(ab){2}$", "abab"))
    assert.is_false(find("^(ab){2}$", "ababab"))
    assert.is_true(find("\\d{3}-\\d{4}", "call 555-1234"))
    assert.is_true(find("^\\D+$", "abc"))
    assert.is_false(find("^\\D+$", "a1"))
    assert.is_true(find("\\bfoo\\b", "a foo b"))
    assert.is_false(find("\\bfoo\\b", "afoo"))
    assert.is_true(find("^.$", "é"))
    assert.is_true(find("^(?:a|b)*?c$", "ababc"))
    assert.is_true(find("^$", ""))
  end)

  it("reports bad patterns and gives up on pathological ones", function()
    local re, err = regex.compile("(")
    assert.is_nil(re)
    assert.matches("unclosed", err)
    assert.is_nil(regex.compile("*a"))
    assert.is_nil(regex.compile("[a"))
    local found, why = regex.find(assert(regex.compile("(a*)*b")), ("a"):rep(30))
    assert.is_nil(found)
    assert.are.equal("pattern too complex", why)
  end)
end)

describe("envoke.sandbox.catalogue", function()
  it("resolves names case-insensitively and ids as numbers or strings", function()
    local cat = catalogue.new()
    assert.are.equal("1235", cat:interest("international").id)
    assert.are.equal("International", cat:interest(1235).name)
    assert.are.equal("mandatory_consent", cat:interest("83293").kind)
    assert.are.equal("subscription", cat:interest("Specials").kind)
    assert.are.equal("Whitepaper Download", cat:nurture("32646").name)
    assert.is_nil(cat:interest("Whitepaper Download"))
    assert.are.equal("barcode", cat:custom_field("BARCODE"))
  end)

  it("keeps defaults for sections a spec leaves out", function()
    local cat = catalogue.new({ interests = { { id = 1, name = "Golf" } } })
    assert.are.equal("Golf", cat:interest("1").name)
    assert.are.equal("Specials", cat:interest("4557").name)
    assert.are.equal("Marketing Sequence 1", cat:nurture(45756).name)
  end)

  it("refuses duplicate ids or names and bad entries", function()
    assert.has_error(function() catalogue.new({ interests = { { id = 1, name = "A" }, { id = 2, name = "a" } } }) end)
    assert.has_error(function() catalogue.new({ nurtures = { { id = 0, name = "A" } } }) end)
    assert.has_error(function() catalogue.new({ custom_fields = { "a.b" } }) end)
    assert.has_error(function() catalogue.new({ settings = "x" }) end)
  end)
end)

describe("envoke.sandbox.store", function()
  it("indexes emails case-insensitively and remote ids exactly, following updates", function()
    local s = store.new()
    local r = contact.new()
    r.email, r.remote_id = "A@B.com", "R1"
    s:insert(r)
    assert.are.equal(r, s:find_email("a@b.COM")[1])
    assert.are.equal(r, s:find_remote_id("R1"))
    assert.is_nil(s:find_remote_id("r1"))
    s:update(r, function(x) x.email, x.remote_id = "c@d.com", "R2" end)
    assert.are.same({}, s:find_email("a@b.com"))
    assert.is_nil(s:find_remote_id("R1"))
    assert.are.equal(r, s:find_remote_id("R2"))
    s:delete(r.id)
    assert.are.same({}, s:find_email("c@d.com"))
    assert.are.equal(0, s:count())
  end)

  it("draws external ids from the given source, 32 hex characters", function()
    local s = store.new({ random = function(n) return ("\171"):rep(n) end })
    local r = s:insert(contact.new())
    assert.are.equal(("ab"):rep(16), r.external_id)
  end)

  describe("data file", function()
    local dir
    before_each(function() dir = shell.tmpdir("sandbox-store-spec") end)
    after_each(function() shell.run("rm -rf " .. shell.quote(dir)) end)

    local AUTH = { authorization = "Basic c2FuZGJveDpzYW5kYm94" }

    it("survives a new sandbox on the same file, ids continuing", function()
      local file = dir .. "/data.json"
      local sb = Sandbox.new { data_file = file }
      sb:handle("POST", "/v1/contacts", "", AUTH, cjson.encode({ email = "a@example.com", interests = { "Consumer" },
        consent_status = "Express", consent_description = "x", autoresponders = { "Whitepaper Download" } }))
      sb:handle("POST", "/v1/contacts", "", AUTH, '{"email":"b@example.com"}')
      sb:handle("DELETE", "/v1/contacts/2", "", AUTH)
      local _, _, before = sb:handle("GET", "/v1/contacts/1", "", AUTH)

      local again = Sandbox.new { data_file = file }
      local _, _, after = again:handle("GET", "/v1/contacts/1", "", AUTH)
      assert.are.equal(before, after)
      local _, _, created = again:handle("POST", "/v1/contacts", "", AUTH, '{"email":"c@example.com"}')
      assert.are.equal(3, cjson.decode(created).result_data.id)
      assert.are.equal("", (shell.run("ls " .. shell.quote(dir) .. " | grep -v '^data.json$'")))
    end)

    it("is emptied by a reset", function()
      local file = dir .. "/data.json"
      local sb = Sandbox.new { data_file = file }
      sb:handle("POST", "/v1/contacts", "", AUTH, '{"email":"a@example.com"}')
      sb:handle("POST", "/_sandbox/reset", "", {}, "")
      assert.are.same({}, cjson.decode(shell.read_file(file)).contacts)
    end)

    it("is read strictly: a file that is not a store is an error", function()
      shell.write_file(dir .. "/bad.json", '{"contacts": "nope"}')
      assert.has_error(function() Sandbox.new { data_file = dir .. "/bad.json" } end)
      shell.write_file(dir .. "/bad2.json", "[1,")
      assert.has_error(function() Sandbox.new { data_file = dir .. "/bad2.json" } end)
    end)

    it("answers a 500 envelope when the file cannot be written", function()
      local sb = Sandbox.new { data_file = dir .. "/missing/dir/data.json" }
      local status, _, body = sb:handle("POST", "/v1/contacts", "", AUTH, '{"email":"a@example.com"}')
      assert.are.equal(500, status)
      assert.is_false(cjson.decode(body).success)
    end)
  end)
end)
