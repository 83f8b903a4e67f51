-- core.join_id: a path's prefix and a numeric id, digits written without snprintf.

local H = require "core_helper"
local core = H.core

describe("core.join_id", function()
  it("appends the id's digits to the prefix, as Lua's own concatenation writes them", function()
    for _, id in ipairs{ 0, 1, 9, 10, 99, 100, 1234, 4294967295, 2 ^ 53 } do
      local n = math.floor(id)
      assert.are.equal(("/v1/contacts/%d"):format(n), core.join_id("/v1/contacts/", n))
    end
    assert.are.equal("7", core.join_id("", 7))
    assert.are.equal(("x"):rep(64) .. "12", core.join_id(("x"):rep(64), 12))
  end)

  it("takes a whole float as its integer", function()
    assert.are.equal("/a/5", core.join_id("/a/", 5.0))
  end)

  it("refuses a negative or fractional id, a long prefix, or no prefix, naming the argument", function()
    for _, case in ipairs{ { "/a/", -1, "#2.-whole number >= 0" }, { "/a/", 1.5, "#2" },
                           { ("x"):rep(65), 1, "#1.-longer than 64 bytes" }, { nil, 1, "#1" },
                           { "/a/", "x", "#2" } } do
      local ok, err = pcall(core.join_id, case[1], case[2])
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("bad argument " .. case[3]), tostring(err))
    end
  end)
end)
