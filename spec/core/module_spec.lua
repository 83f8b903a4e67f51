-- envoke.core's module values, its OS helpers (random, clock) and how the
-- shared object is linked.

local H = require "core_helper"
local core, cjson = H.core, H.cjson

describe("envoke.core module", function()
  it("has _VERSION 0.1.0", function()
    assert.are.equal("0.1.0", core._VERSION)
  end)

  it("reports libcurl's version", function()
    assert.is_string(core.curl_version)
    assert.is_truthy(core.curl_version:match("^%d+%.%d+%.%d+"), core.curl_version)
  end)

  it("has the default user agent lua-envoke/<version>", function()
    assert.are.equal("lua-envoke/0.1.0", core.user_agent)
  end)

  it("has null equal to cjson.null, a light userdata", function()
    assert.are.equal("userdata", type(core.null))
    assert.is_true(rawequal(core.null, cjson.null))
  end)

  it("has empty_array, a userdata distinct from null", function()
    assert.are.equal("userdata", type(core.empty_array))
    assert.is_false(rawequal(core.empty_array, core.null))
  end)

  it("has array_mt, a metatable", function()
    assert.is_table(core.array_mt)
  end)
end)

describe("core.random", function()
  it("returns floats in [0, 1), spread out", function()
    local seen, sum, n = {}, 0, 4000
    local distinct = 0
    for _ = 1, n do
      local x = core.random()
      assert.is_number(x)
      assert.is_true(x >= 0 and x < 1, "out of range: " .. tostring(x))
      if not seen[x] then seen[x], distinct = true, distinct + 1 end
      sum = sum + x
    end
    assert.is_true(distinct > n - 10, "too many repeats: " .. distinct .. " distinct of " .. n)
    -- The mean of 4000 uniform draws is 0.5 with sd ~0.0046: 0.05 is ~11 sd.
    assert.is_true(math.abs(sum / n - 0.5) < 0.05, "mean " .. sum / n)
  end)

  it("does not draw from math.random", function()
    math.randomseed(12345)
    local a = { math.random(), math.random() }
    math.randomseed(12345)
    core.random(); core.random_bytes(16)
    local b = { math.random(), math.random() }
    assert.are.same(a, b)
  end)
end)

describe("core.random_bytes", function()
  it("returns exactly n bytes", function()
    for _, n in ipairs{ 0, 1, 2, 16, 255, 4096, 100000 } do
      local s = core.random_bytes(n)
      assert.is_string(s)
      assert.are.equal(n, #s)
    end
  end)

  it("returns different bytes each time, covering the byte range", function()
    assert.are_not.equal(core.random_bytes(32), core.random_bytes(32))
    local seen, distinct = {}, 0
    local s = core.random_bytes(8192)
    for i = 1, #s do
      local b = s:byte(i)
      if not seen[b] then seen[b], distinct = true, distinct + 1 end
    end
    assert.is_true(distinct > 240, "only " .. distinct .. " distinct byte values in 8 KiB")
  end)
end)

describe("core.now and core.sleep", function()
  it("now() is a monotonic millisecond clock", function()
    local prev = core.now()
    assert.is_number(prev)
    for _ = 1, 1000 do
      local t = core.now()
      assert.is_true(t >= prev, "clock went backwards")
      prev = t
    end
  end)

  it("now() advances in milliseconds, as os.time does in seconds", function()
    -- Cross-check the unit against the wall clock over one second boundary.
    local t0 = os.time()
    local m0
    for _ = 1, 3000 do   -- about 3 s at most, polling each millisecond
      if os.time() > t0 then m0 = core.now() break end
      core.sleep(1)
    end
    assert.is_number(m0)
    core.sleep(1000)
    local elapsed = core.now() - m0
    assert.is_true(elapsed >= 990 and elapsed < 3000, "sleep(1000) took " .. elapsed .. " ms")
    -- os.time() reads the kernel's coarse clock, which can lag a few ms behind.
    for _ = 1, 50 do
      if os.time() >= t0 + 2 then break end
      core.sleep(1)
    end
    local wall = os.time() - (t0 + 1)
    assert.is_true(wall >= 1 and wall <= 3, "wall clock moved " .. wall .. " s")
  end)

  it("sleep(ms) sleeps about ms milliseconds", function()
    local elapsed = H.timed(function() core.sleep(50) end)
    assert.is_true(elapsed >= 49 and elapsed < 1000, "sleep(50) took " .. elapsed .. " ms")
    elapsed = H.timed(function() core.sleep(0) end)
    assert.is_true(elapsed < 100, "sleep(0) took " .. elapsed .. " ms")
  end)

  it("now() has sub-second resolution", function()
    local a = core.now()
    core.sleep(5)
    local b = core.now()
    assert.is_true(b - a >= 4 and b - a < 500, "5 ms measured as " .. (b - a))
  end)
end)

describe("the shared object", function()
  local function core_so()
    for template in package.cpath:gmatch("[^;]+") do
      local path = template:gsub("%?", "envoke/core")
      local f = io.open(path, "rb")
      if f then f:close() return path end
    end
  end

  it("does not link liblua (the interpreter provides the API)", function()
    local path = core_so()
    assert.is_string(path, "envoke/core.so not found on package.cpath")
    local pipe = assert(io.popen("readelf -d " .. H.shell_quote(path) .. " 2>&1"))
    local dynamic = pipe:read("*a")
    pipe:close()
    H.contains(dynamic, "NEEDED")
    H.contains(dynamic, "libcurl")
    for needed in dynamic:gmatch("Shared library: %[([^%]]+)%]") do
      assert.is_falsy(needed:match("^liblua"), "links " .. needed)
      assert.is_falsy(needed:match("^libluajit"), "links " .. needed)
    end
  end)
end)
