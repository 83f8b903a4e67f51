-- A Lua finalizer may run at any allocation, so one can run while a pool call
-- turns its result into Lua values, and call the pool back: close it, cancel,
-- collect, or make a request of its own. None of that may touch memory the
-- running call still reads (spec/check runs this under ASan and valgrind too).
--
-- A chain of finalizers (each makes the next) keeps some pending at every
-- cycle of a collector tuned to run in small, frequent steps; one of them
-- calls the pool while a call is under way. The answers are large and have
-- many headers, so most of a call's allocations happen while its result is
-- pushed. Each spec checks that the finalizer did run inside calls that then
-- returned their answer.

local H = require "core_helper"
local nginx = require "sandbox.nginx"

local HEADERS = 150

-- An answer with many headers (and a repeated one): many allocations in the push.
local SERVER = [[
    location / {
      content_by_lua_block {
        for i = 1, ]] .. HEADERS .. [[ do ngx.header["X-Header-" .. i] = string.rep("v", i % 40 + 1) end
        ngx.header["X-Repeated"] = { "one", "two", "three" }
        ngx.header["Content-Type"] = "application/json"
        -- A large body (?big, and client calls), whose allocation makes the
        -- collector run a whole cycle, finalizers included.
        local big = ngx.var.arg_big or ngx.var.uri:sub(1, 4) == "/v1/"
        local pad = big and string.rep(" ", 256 * 1024) or ""
        ngx.print('{"result_text":"ok","success":true,"result_data":{}}' .. pad)
      }
    }
]]

-- A value whose finalizer calls fn (tables have no __gc before 5.2).
local newproxy = rawget(_G, "newproxy")
local function garbage_with_finalizer(fn)
  if newproxy then
    local u = newproxy(true)
    getmetatable(u).__gc = function() fn() end
    return u
  end
  return setmetatable({}, { __gc = function() fn() end })
end

-- Garbage that is never short of a pending finalizer: each finalizer makes a
-- new such value, so some run at every cycle of the collector, at whatever
-- allocation ends it. One of them calls hook.fn (once) while it is set.
local function finalizer_chain(hook)
  local function make()
    garbage_with_finalizer(function()
      local fn = hook.fn
      if fn then
        hook.fn = nil
        fn()
      end
      if hook.live then make() end
    end)
  end
  hook.live = true
  for _ = 1, 20 do make() end
end

-- Allocates a random amount, so the collector's cycles do not fall into step
-- with the loop's iterations (which would put every cycle's end outside the call).
local function shift_collector()
  return #string.rep("-", math.random(0, 200000))
end

-- Runs fn(hook) with the collector in small, frequent steps and a finalizer
-- chain that calls hook.fn from inside whatever runs while it is set.
local function with_finalizers(fn)
  -- The next cycle starts as one ends (5.3 reads a pause of 0 as a debt of
  -- the whole heap at every allocation, and crawls).
  local pause = collectgarbage("setpause", _VERSION == "Lua 5.3" and 100 or 0)
  local stepmul = collectgarbage("setstepmul", 1000)
  local hook = {}
  finalizer_chain(hook)
  local ok, err = pcall(fn, hook)
  hook.fn, hook.live = nil, false
  collectgarbage("setpause", pause)
  collectgarbage("setstepmul", stepmul)
  collectgarbage("collect")
  if not ok then error(err, 0) end
end

local CLOSED = "attempt to use a closed pool"

-- Where a collector cycle ends depends on the whole heap (a full suite run
-- has a larger one), so each case tries until the finalizer has run inside
-- a call ENOUGH times, within TRIES calls.
local TRIES, ENOUGH = 1500, 3

describe("a finalizer that calls the pool during a call", function()
  local srv

  lazy_setup(function() srv = nginx.start{ server = SERVER } end)
  lazy_teardown(function() if srv then srv:stop() end end)

  -- Checks a call's outcome; returns true when it came back with its answer.
  local function check_answer(ok, status, body, headers)
    if not ok then
      H.contains(status, CLOSED) -- the finalizer closed it before the call started
      return false
    end
    assert.are.equal(200, status)
    H.contains(body, '"success":true')
    assert.are.equal("one, two, three", headers["x-repeated"])
    assert.are.equal(string.rep("v", HEADERS % 40 + 1), headers["x-header-" .. HEADERS])
    return true
  end

  it("closing the pool while request() pushes its result", function()
    local during = 0
    with_finalizers(function(hook)
      for i = 1, TRIES do
        if during >= ENOUGH then break end
        local pool = H.pool(srv.url)
        local closed = false
        local path = "/request?i=" .. i .. (i % 2 == 0 and "&big=1" or "")
        -- Some calls have headers whose number values become strings in the call.
        local headers = i % 3 == 0 and { ["X-Number"] = i + 0.5, ["X-Text"] = "t" } or nil
        shift_collector()
        hook.fn = function() pool:close(); closed = true end
        local ok, status, body, answer = pcall(pool.request, pool, "GET", path, nil, headers)
        hook.fn = nil
        if check_answer(ok, status, body, answer) and closed then during = during + 1 end
        pool:close()
      end
    end)
    assert.is_true(during > 0, "the finalizer never ran during a call")
  end)

  -- Submits n requests and drives them until every one waits in finished().
  local function finished_pool(n, tag)
    local pool = H.pool(srv.url)
    local ids = {}
    for k = 1, n do ids[k] = pool:submit("GET", "/finished?big=1&" .. tag .. "&k=" .. k) end
    -- perform() returns at once while a result waits, so this polls.
    for _ = 1, 2000 do
      if pool:perform(0) == 0 then break end
      H.core.sleep(5)
    end
    return pool, ids
  end

  it("closing the pool while finished() pushes a result", function()
    local during = 0
    with_finalizers(function(hook)
      for i = 1, TRIES do
        if during >= ENOUGH then break end
        local pool = finished_pool(3, "i=" .. i)
        local closed = false
        shift_collector()
        hook.fn = function() pool:close(); closed = true end
        local ok, id, status, body, headers = pcall(pool.finished, pool)
        hook.fn = nil
        if ok then
          assert.is_number(id)
          if check_answer(true, status, body, headers) and closed then during = during + 1 end
        else
          H.contains(id, CLOSED)
        end
        pool:close()
      end
    end)
    assert.is_true(during > 0, "the finalizer never ran during a call")
  end)

  it("cancel, finished and request called from inside a push", function()
    local during = 0
    with_finalizers(function(hook)
      for i = 1, TRIES do
        if during >= ENOUGH then break end
        local pool, ids = finished_pool(4, "i=" .. i)
        local inner, cancelled, nested
        shift_collector()
        hook.fn = function()
          -- A finalizer must not raise (5.1 would pass the error to the allocating call).
          pcall(function()
            inner = { pool:finished() }
            cancelled = { pool:cancel(ids[4]) }
            nested = { pool:request("GET", "/nested?i=" .. i) }
          end)
        end
        local id, status, body, headers = pool:finished()
        hook.fn = nil
        assert.is_number(id)
        check_answer(true, status, body, headers)
        local seen = { [id] = true }
        if inner then
          during = during + 1
          assert.is_number(inner[1])
          assert.are_not.equal(id, inner[1])
          check_answer(true, inner[2], inner[3], inner[4])
          seen[inner[1]] = true
          check_answer(true, nested[1], nested[2], nested[3])
        end
        for _ = 1, 4 do
          local other, st, b, h = pool:finished()
          if not other then break end
          assert.is_nil(seen[other], "id " .. other .. " reported twice")
          seen[other] = true
          check_answer(true, st, b, h)
        end
        local cancelled_4 = cancelled ~= nil and cancelled[1] == true
        for k = 1, 4 do
          assert.are.equal(not (k == 4 and cancelled_4), seen[ids[k]] == true, "request " .. k)
        end
        assert.are.equal(0, pool:pending())
        pool:close()
      end
    end)
    assert.is_true(during > 0, "the finalizer never ran during a call")
  end)

  it("closing a client while client:ping() runs", function()
    local envoke = require "envoke"
    local during = 0
    with_finalizers(function(hook)
      for _ = 1, TRIES do
        if during >= ENOUGH then break end
        local client = envoke.new{ base_url = srv.url, api_id = "id", api_key = "key", retries = 0 }
        local closed = false
        shift_collector()
        hook.fn = function() pcall(client.close, client); closed = true end
        local ok, result = pcall(client.ping, client)
        hook.fn = nil
        if ok and closed and result then during = during + 1 end
        if not ok then assert.is_string(result) end
        pcall(client.close, client)
      end
    end)
    assert.is_true(during > 0, "the finalizer never ran during a call")
  end)
end)
