-- The webhook round trip over real sockets: the sandbox (nginx, delivering
-- from a timer through cosockets) POSTs to a receiver listening on
-- 127.0.0.1 in this process, which answers through envoke.webhook.receive.
local sandbox_server = require "sandbox_server"
local socket = require "socket"
local webhook = require "envoke.webhook"

local SECRET = webhook.new_secret()

-- Reads one delivery; returns its path and body, and the connection.
local function accept(listener)
  listener:settimeout(10)
  local conn = assert(listener:accept())
  conn:settimeout(10)
  local line = assert(conn:receive("*l"))
  local length
  while true do
    local h = assert(conn:receive("*l"))
    if h == "" then break end
    length = length or tonumber(h:lower():match("^content%-length:%s*(%d+)"))
  end
  return line:match("^POST (%S+) HTTP/1%.1$"), assert(conn:receive(length)), conn
end

local function answer(conn, status)
  conn:send(("HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"):format(status))
  conn:close()
end

describe("webhook round trip: sandbox over HTTP -> a receiver on 127.0.0.1", function()
  local srv, listener, port, client
  setup(function()
    srv = sandbox_server.start()
    listener = assert(socket.bind("127.0.0.1", 0))
    port = select(2, listener:getsockname())
  end)
  teardown(function()
    if listener then listener:close() end
    if srv then srv:stop() end
  end)
  before_each(function()
    srv:reset()
    client = srv:client()
  end)

  -- The deliveries once the sandbox has settled the latest one.
  local function settled(state)
    for _ = 1, 500 do
      local list = srv:control("GET", "deliveries")
      if list[#list] and list[#list].state == state then return list end
      socket.sleep(0.01)
    end
    error("no delivery reached state " .. state .. ": " .. require("cjson").encode(srv:control("GET", "deliveries")))
  end

  it("delivers a new contact to the receiver, which checks the secret and reads the records", function()
    local url = ("http://127.0.0.1:%d/hook?secret=%s"):format(port, SECRET)
    assert(client.hooks:create{ type = "new_contact", url = url })
    local c = assert(client:contact{ email = "round@example.com", first_name = "Round" }:insert())
    local path, body, conn = accept(listener)
    local got
    local status = webhook.receive(body, { secret = SECRET, given = path:match("secret=(%x+)"),
                                           handle = function(records) got = records end })
    answer(conn, status)
    assert.are.equal(200, status)
    assert.are.equal(c.id, got[1].id)
    assert.are.equal("Round", got[1].first_name)
    local d = settled("delivered")
    assert.are.equal(200, d[1].attempts[1].status)
  end)

  it("retries a delivery whose answer was lost; the receiver's deduper does not handle it twice", function()
    assert(client.hooks:create{ type = "consent_change", url = ("http://127.0.0.1:%d/consent"):format(port) })
    local c = assert(client:contact{ email = "crm@example.com" }:insert())
    assert(client:contact{ id = c.id }:consent("Express", "web form"):save())
    local seen, handled = webhook.deduper(), 0
    local opts = { dedupe = seen, handle = function(records)
      handled = handled + 1
      assert.are.equal("Express", records[1].consent_status)
    end }
    local _, body, conn = accept(listener)
    assert.are.equal(200, (webhook.receive(body, opts)))
    conn:close() -- handled, but the answer never reaches Envoke
    settled("retry")
    srv:advance(600)
    local _, again, conn2 = accept(listener)
    assert.are.equal(body, again)
    local status = webhook.receive(again, opts)
    answer(conn2, status)
    assert.are.equal(200, status)
    assert.are.equal(1, handled)
    local d = settled("delivered")
    assert.are.equal(2, #d[1].attempts)
  end)

  it("removes the hook when the receiver answers 410", function()
    local hook = assert(client.hooks:create{ type = "new_contact", url = ("http://127.0.0.1:%d/old"):format(port) })
    assert(client:contact{ email = "gone@example.com" }:insert())
    local _, body, conn = accept(listener)
    answer(conn, (webhook.receive(body, { handle = function() return "gone" end })))
    settled("gone")
    assert.are.equal("not_found", select(2, client.hooks:get(hook.id)).kind)
  end)
end)
