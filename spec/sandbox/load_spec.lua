-- Load: 10,000 mixed requests from several concurrent clients (separate
-- processes, spec/sandbox/load_client.lua); the sandbox answers every one
-- as expected and its data ends up exactly as the clients' models say.

local sandbox_server = require "sandbox_server"
local shell = require "sandbox.shell"
local socket = require "socket"
local cjson = require "cjson.safe"

local CLIENTS, PER_CLIENT = 4, 2500
local TIME_LIMIT = 240 -- seconds, for all clients together

describe("sandbox under load", function()
  local srv, dir
  setup(function()
    srv = sandbox_server.start()
    dir = shell.tmpdir("sandbox-load")
  end)
  teardown(function()
    srv:stop()
    shell.run("rm -rf " .. shell.quote(dir))
  end)

  it(("answers %d mixed requests from %d concurrent clients and keeps exactly what they wrote"):format(
    CLIENTS * PER_CLIENT, CLIENTS), function()
    srv:reset()
    local pids = {}
    for c = 1, CLIENTS do
      local result, log = dir .. "/client" .. c .. ".json", dir .. "/client" .. c .. ".log"
      local out = shell.run(("lua5.4 spec/sandbox/load_client.lua %d %d %d %s >%s 2>&1 </dev/null & echo $!"):format(
        srv.port, c, PER_CLIENT, shell.quote(result), shell.quote(log)))
      pids[c] = assert(tonumber(out:match("(%d+)%s*$")))
    end

    local deadline = socket.gettime() + TIME_LIMIT
    local results = {}
    while socket.gettime() < deadline do
      local done = 0
      for c = 1, CLIENTS do
        results[c] = results[c] or cjson.decode(shell.read_file(dir .. "/client" .. c .. ".json") or "")
        if results[c] then done = done + 1 end
      end
      if done == CLIENTS then break end
      socket.sleep(0.2)
    end
    for c = 1, CLIENTS do
      if not results[c] then shell.run("kill " .. pids[c] .. " 2>/dev/null") end
      assert.is_table(results[c], "client " .. c .. " did not finish in time: "
        .. tostring(shell.read_file(dir .. "/client" .. c .. ".log")))
    end

    local expected, sent = {}, 0
    for c = 1, CLIENTS do
      local r = results[c]
      assert.are.same({}, r.failures, "client " .. c .. " saw unexpected answers")
      sent = sent + r.sent
      for _, contact in ipairs(r.contacts) do expected[#expected + 1] = contact end
    end
    assert.are.equal(CLIENTS * PER_CLIENT, sent)
    assert.are.equal(CLIENTS * PER_CLIENT, #srv:log())

    local actual = srv:contacts()
    for _, contact in ipairs(actual) do contact._sandbox = nil end
    table.sort(expected, function(a, b) return a.id < b.id end)
    assert.are.equal(#expected, #actual)
    assert.are.same(expected, actual)
    assert.are.same({}, srv:errors())
  end)
end)
