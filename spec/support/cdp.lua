-- cdp: a headless Chromium driven through the DevTools protocol, for the
-- specs that use a page as a person would (fill a form, submit, read).
--
--   local cdp = require "cdp"
--   if not cdp.available() then pending(...) end
--   local browser = cdp.start()              -- Debian's chromium, headless, private profile
--   browser:navigate("http://127.0.0.1:8080/")
--   browser:type('input[name="email"]', "ada@example.com")
--   browser:click("button")
--   browser:wait_for("location.pathname == '/signup'")
--   print(browser:eval("document.body.innerText"))
--   browser:stop()
--
-- The protocol runs over a WebSocket (RFC 6455) on 127.0.0.1, spoken here
-- with luasocket: text frames, masked with a zero key as the client must mask.
local socket = require "socket"
local cjson = require "cjson"
local shell = require "sandbox.shell"

local M = {}

local CHROMIUM = "chromium"

--- Whether Debian's chromium is installed.
function M.available()
  local _, code = shell.run("command -v " .. CHROMIUM .. " >/dev/null")
  return code == 0
end

local function free_port()
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  return tonumber(port)
end

-- One exchange with the browser's DevTools HTTP endpoint (it keeps the
-- connection open: the body ends at its Content-Length).
local function http(port, method, path)
  local conn = socket.tcp()
  conn:settimeout(5)
  if not conn:connect("127.0.0.1", port) then return nil end
  conn:send(method .. " " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1:" .. port .. "\r\n\r\n")
  local length
  while true do
    local line = conn:receive("*l")
    if not line then conn:close() return nil end
    if line == "" then break end
    length = length or tonumber(line:lower():match("^content%-length:%s*(%d+)"))
  end
  local body = length and conn:receive(length)
  conn:close()
  return body
end

local Browser = {}
Browser.__index = Browser

local function send_frame(conn, text)
  local n = #text
  local head
  if n < 126 then
    head = string.char(0x81, 0x80 + n)
  elseif n < 65536 then
    head = string.char(0x81, 0x80 + 126, math.floor(n / 256), n % 256)
  else
    local bytes = {}
    for i = 8, 1, -1 do
      bytes[i] = n % 256
      n = math.floor(n / 256)
    end
    head = string.char(0x81, 0x80 + 127, (table.unpack or unpack)(bytes)) -- luacheck: ignore 143
  end
  assert(conn:send(head .. "\0\0\0\0" .. text)) -- a zero masking key leaves the payload as it is
end

-- One whole message (continuation frames joined); errors on close.
local function receive_message(conn)
  local parts = {}
  while true do
    local h = assert(conn:receive(2))
    local b1, b2 = h:byte(1, 2)
    local len = b2 % 128
    if len == 126 then
      local e = assert(conn:receive(2))
      len = e:byte(1) * 256 + e:byte(2)
    elseif len == 127 then
      local e = assert(conn:receive(8))
      len = 0
      for i = 1, 8 do len = len * 256 + e:byte(i) end
    end
    local payload = len > 0 and assert(conn:receive(len)) or ""
    local opcode = b1 % 16
    if opcode == 8 then error("cdp: the browser closed the connection") end
    if opcode == 0 or opcode == 1 or opcode == 2 then
      parts[#parts + 1] = payload
      if b1 >= 128 then return table.concat(parts) end
    end
  end
end

local function connect(ws_url)
  local port, path = ws_url:match("^ws://127%.0%.0%.1:(%d+)(/.*)$")
  local conn = socket.tcp()
  conn:settimeout(30)
  assert(conn:connect("127.0.0.1", tonumber(port)))
  assert(conn:send("GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1:" .. port .. "\r\nUpgrade: websocket\r\n"
    .. "Connection: Upgrade\r\nSec-WebSocket-Key: bHVhLWVudm9rZS1jZHAtMQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
  local status = assert(conn:receive("*l"))
  assert(status:find(" 101 ", 1, true), "cdp: no WebSocket upgrade: " .. status)
  repeat local line = assert(conn:receive("*l")) until line == ""
  return conn
end

--- Starts chromium headless and attaches to a new blank page.
function M.start()
  local dir = shell.tmpdir("envoke-chromium")
  local port = free_port()
  local cmd = table.concat({ CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
    "--disable-background-networking", "--no-first-run", "--user-data-dir=" .. shell.quote(dir),
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=" .. port, "about:blank" }, " ")
  local started = shell.run("setsid " .. cmd .. " >" .. shell.quote(dir .. "/log") .. " 2>&1 </dev/null & echo $!")
  local pid = tonumber(started:match("%d+"))
  local self = setmetatable({ dir = dir, port = port, pid = pid, next_id = 0, events = {} }, Browser)
  local pages
  for _ = 1, 600 do
    local text = http(port, "GET", "/json/list")
    pages = text and cjson.decode(text)
    if pages and pages[1] then break end
    socket.sleep(0.05)
  end
  local page
  for _, p in ipairs(pages or {}) do
    if p.type == "page" then page = p break end
  end
  if not page then
    self:stop()
    error("cdp: chromium did not start: " .. (shell.read_file(dir .. "/log") or ""):sub(1, 2000), 2)
  end
  self.conn = connect(page.webSocketDebuggerUrl)
  self:call("Page.enable")
  self:call("Runtime.enable")
  return self
end

--- Sends a protocol command and returns its result (raises on an error).
function Browser:call(method, params)
  self.next_id = self.next_id + 1
  local id = self.next_id
  send_frame(self.conn, cjson.encode{ id = id, method = method, params = params or {} }) -- {} encodes as an object
  while true do
    local msg = cjson.decode(receive_message(self.conn))
    if msg.id == id then
      if msg.error then error("cdp: " .. method .. ": " .. cjson.encode(msg.error), 2) end
      return msg.result
    elseif msg.method then
      self.events[#self.events + 1] = msg
    end
  end
end

--- The value of a JavaScript expression in the page.
function Browser:eval(expression)
  local r = self:call("Runtime.evaluate", { expression = expression, returnByValue = true, awaitPromise = true })
  if r.exceptionDetails then error("cdp: " .. expression .. ": " .. cjson.encode(r.exceptionDetails), 2) end
  return r.result.value
end

--- Waits until a JavaScript condition holds (up to `seconds`, default 20).
function Browser:wait_for(condition, seconds)
  local deadline = socket.gettime() + (seconds or 20)
  while socket.gettime() < deadline do
    local ok, value = pcall(self.eval, self, "!!(" .. condition .. ")")
    if ok and value == true then return true end
    socket.sleep(0.05)
  end
  error("cdp: timed out waiting for " .. condition, 2)
end

--- Opens a URL and waits until the page has loaded.
function Browser:navigate(url)
  self:call("Page.navigate", { url = url })
  self:wait_for("document.readyState == 'complete' && location.href == " .. cjson.encode(url))
end

--- Types text into the element a CSS selector finds, as keyboard input.
function Browser:type(selector, text)
  self:eval("document.querySelector(" .. cjson.encode(selector) .. ").focus()")
  self:call("Input.insertText", { text = text })
end

--- Clicks the element a CSS selector finds.
function Browser:click(selector)
  self:eval("document.querySelector(" .. cjson.encode(selector) .. ").click()")
end

--- Ends chromium (its whole process group) and removes its profile (idempotent).
function Browser:stop()
  if self.stopped then return end
  self.stopped = true
  if self.conn then self.conn:close() end
  if self.pid then
    shell.run("kill -TERM -" .. self.pid .. " 2>/dev/null; i=0; while kill -0 -" .. self.pid
      .. " 2>/dev/null && [ $i -lt 200 ]; do sleep 0.02; i=$((i+1)); done; kill -KILL -" .. self.pid
      .. " 2>/dev/null; true")
  end
  shell.run("rm -rf " .. shell.quote(self.dir))
end

return M
