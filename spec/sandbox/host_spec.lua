-- sandbox/run and sandbox.host: the nginx host, TLS + HTTP/2, the data file,
-- the catalogue file, credentials from the environment, signals, cleanup.

local sandbox_server = require "sandbox_server"
local shell = require "sandbox.shell"
local socket = require "socket"
local cjson = require "cjson.safe"

local q = shell.quote

local function urandom_port()
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = f:read(2)
  f:close()
  return 20000 + (b:byte(1) * 256 + b:byte(2)) % 10000
end

-- A port nothing listens on right now.
local function free_port()
  for _ = 1, 50 do
    local port = urandom_port()
    local probe = socket.tcp()
    local ok = probe:bind("127.0.0.1", port)
    probe:close()
    if ok then return port end
  end
  error("no free port")
end

local function alive(pid)
  local stat = shell.read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("%) (%a)")
  return state ~= "Z" and state ~= "X"
end

local function wait_until(fn, seconds)
  local deadline = socket.gettime() + (seconds or 10)
  while socket.gettime() < deadline do
    local v = fn()
    if v then return v end
    socket.sleep(0.05)
  end
  return nil
end

-- Starts sandbox/run in its own process group; returns a handle once it
-- printed that it is ready (or exited).
local function run(args, env)
  local dir = shell.tmpdir("sandbox-run-spec")
  local out = dir .. "/out"
  for attempt = 1, 5 do
    local port = free_port()
    local full = args:gsub("{PORT}", tostring(port)):gsub("{TLS}", tostring(free_port()))
    local pid_text = shell.run((env or "") .. " setsid ./sandbox/run " .. full .. " >" .. q(out)
      .. " 2>&1 </dev/null & echo $!")
    local pid = tonumber(pid_text:match("(%d+)%s*$"))
    local proc = { pid = pid, dir = dir, out = out, port = port }
    wait_until(function()
      local text = shell.read_file(out) or ""
      return text:find("ENVOKE_BASE_URL=", 1, true) or not alive(pid)
    end, 15)
    proc.text = shell.read_file(out) or ""
    proc.url = proc.text:match("ENVOKE_BASE_URL=(%S+)")
    proc.ca_file = proc.text:match("ENVOKE_CA_FILE=(%S+)")
    proc.tls_url = proc.text:match("HTTPS %(HTTP/2%): (%S+)")
    proc.prefix = proc.ca_file and proc.ca_file:match("^(.*)/tls/ca%.pem$")
    if proc.url or not proc.text:find("Address already in use", 1, true) or attempt == 5 then return proc end
    wait_until(function() return not alive(pid) end, 5)
  end
end

local function stop(proc, signal)
  if alive(proc.pid) then
    -- The whole process group, as a terminal's Ctrl-C would (dash's kill takes no "--").
    shell.run("kill -" .. (signal or "TERM") .. " -" .. proc.pid .. " 2>/dev/null")
    wait_until(function() return not alive(proc.pid) end, 10)
  end
  shell.run("rm -rf " .. q(proc.dir))
end

local function curl(args)
  return shell.run("curl -sS " .. args)
end

-- The body curl printed, decoded.
local function curl_json(args)
  return cjson.decode((curl(args)))
end

describe("sandbox/run", function()
  local procs = {}
  local function start(args, env)
    local p = run(args, env)
    procs[#procs + 1] = p
    return p
  end
  after_each(function()
    for _, p in ipairs(procs) do stop(p) end
    procs = {}
  end)

  it("serves the API on the given port and prints the base URL and credentials", function()
    local p = start("--port {PORT}")
    assert.are.equal("http://127.0.0.1:" .. p.port, p.url, p.text)
    assert.matches("ENVOKE_API_ID=sandbox", p.text)
    assert.matches("ENVOKE_API_KEY=sandbox", p.text)
    local body, code = curl("-u sandbox:sandbox " .. p.url .. "/v1/settings")
    assert.are.equal(0, code)
    assert.are.equal("Envoke Sandbox", cjson.decode(body).name)
  end)

  it("takes the credentials from ENVOKE_API_ID / ENVOKE_API_KEY", function()
    local p = start("--port {PORT}", "ENVOKE_API_ID=acct-7 ENVOKE_API_KEY='s3cr3t key'")
    assert.matches("ENVOKE_API_ID=acct%-7", p.text)
    local body = curl("-o /dev/null -w '%{http_code}' -u sandbox:sandbox " .. p.url .. "/v1/settings")
    assert.are.equal("401", body)
    body = curl("-o /dev/null -w '%{http_code}' -u 'acct-7:s3cr3t key' " .. p.url .. "/v1/settings")
    assert.are.equal("200", body)
  end)

  it("serves HTTPS with HTTP/2 and a certificate signed by the CA it prints", function()
    local p = start("--port {PORT} --tls-port {TLS}")
    assert.is_string(p.ca_file, p.text)
    assert.is_string(p.tls_url)
    local out, code = curl("--http2 --cacert " .. q(p.ca_file) .. " -u sandbox:sandbox -w ' %{http_version}' "
      .. p.tls_url .. "/v1/settings")
    assert.are.equal(0, code, out)
    assert.matches(" 2$", out)
    local _, bad = curl("-o /dev/null " .. p.tls_url .. "/v1/settings")
    assert.are.equal(60, bad) -- not trusted without the CA
  end)

  it("stops on SIGTERM and on SIGINT, leaving no nginx and no temp prefix", function()
    for _, signal in ipairs { "TERM", "INT" } do
      local p = start("--port {PORT} --tls-port {TLS}")
      assert.is_string(p.prefix, p.text)
      local pid_file = shell.read_file(p.prefix .. "/nginx.pid")
      local nginx_pid = tonumber(pid_file)
      assert.is_true(alive(nginx_pid))
      stop(p, signal)
      assert.is_falsy(alive(p.pid), signal)
      assert.truthy(wait_until(function() return not alive(nginx_pid) end, 5), "nginx still running after " .. signal)
      assert.truthy(wait_until(function() return not shell.read_file(p.prefix .. "/nginx.conf") end, 5),
        "prefix left behind after " .. signal)
    end
  end)

  it("keeps contacts in --data across a restart, replacing the file atomically", function()
    local dir = shell.tmpdir("sandbox-data-spec")
    local file = dir .. "/contacts.json"
    local p = start("--port {PORT} --data " .. q(file))
    curl("-u sandbox:sandbox -d '{\"email\":\"keep@example.com\",\"first_name\":\"Kept\"}' " .. p.url .. "/v1/contacts")
    local inode1 = shell.run("stat -c %i " .. q(file))
    curl("-u sandbox:sandbox -d '{\"email\":\"two@example.com\"}' " .. p.url .. "/v1/contacts")
    local inode2 = shell.run("stat -c %i " .. q(file))
    assert.are_not.equal(inode1, inode2) -- a new file renamed over the old one
    local saved = cjson.decode(shell.read_file(file))
    assert.are.equal(2, #saved.contacts)
    assert.are.equal("", shell.run("ls " .. q(dir) .. " | grep -v '^contacts.json$'"))
    stop(p)

    p = start("--port {PORT} --data " .. q(file))
    assert.are.equal("Kept", curl_json("-u sandbox:sandbox " .. p.url .. "/v1/contacts/1").first_name)
    local out = curl_json("-u sandbox:sandbox -d '{\"email\":\"three@example.com\"}' " .. p.url .. "/v1/contacts")
    assert.are.equal(3, out.result_data.id)
    stop(p)
    shell.run("rm -rf " .. q(dir))
  end)

  it("refuses a data file that is not a store, saying so", function()
    local dir = shell.tmpdir("sandbox-data-spec")
    shell.write_file(dir .. "/bad.json", "{not json")
    local p = start("--port {PORT} --data " .. q(dir .. "/bad.json"))
    assert.is_nil(p.url)
    assert.matches("data file", p.text)
    shell.run("rm -rf " .. q(dir))
  end)

  it("loads the account's catalogue from --catalogue", function()
    local dir = shell.tmpdir("sandbox-cat-spec")
    shell.write_file(dir .. "/cat.json", cjson.encode({
      interests = { { id = 11, name = "Golf" } }, subscriptions = { { id = 12, name = "Weekly" } },
      mandatory_consent = { id = 13 }, nurtures = { { id = 21, name = "Welcome" } },
      custom_fields = { "handicap" }, settings = { name = "Golf Club" },
    }))
    local p = start("--port {PORT} --catalogue " .. q(dir .. "/cat.json"))
    local interests = curl_json("-u sandbox:sandbox " .. p.url .. "/v1/interests")
    assert.are.same({ ["11"] = "Golf", ["12"] = "Weekly", ["13"] = "Mandatory consent" }, interests)
    assert.are.same({ ["21"] = "Welcome" }, curl_json("-u sandbox:sandbox " .. p.url .. "/v1/autoresponders"))
    assert.are.equal("Golf Club", curl_json("-u sandbox:sandbox " .. p.url .. "/v1/settings").name)
    local out = curl_json("-u sandbox:sandbox -d '{\"email\":\"g@example.com\",\"custom_fields\":{\"handicap\":\"12\"},"
      .. "\"interests\":[\"Golf\"]}' " .. p.url .. "/v1/contacts")
    assert.are.same({ handicap = "12" }, out.result_data.custom_fields)
    shell.run("rm -rf " .. q(dir))
  end)

  it("refuses an invalid catalogue file, saying why", function()
    local dir = shell.tmpdir("sandbox-cat-spec")
    shell.write_file(dir .. "/cat.json", '{"interests":[{"id":1,"name":"A"},{"id":1,"name":"B"}]}')
    local p = start("--port {PORT} --catalogue " .. q(dir .. "/cat.json"))
    assert.is_nil(p.url)
    assert.matches("id 1 is used twice", p.text)
    shell.run("rm -rf " .. q(dir))
  end)

  it("prints its usage for --help and refuses unknown arguments", function()
    local out, code = shell.run("./sandbox/run --help")
    assert.are.equal(0, code)
    assert.matches("usage: sandbox/run", out)
    out, code = shell.run("./sandbox/run --bogus")
    assert.are.equal(2, code)
    assert.matches("unknown argument %-%-bogus", out)
  end)
end)

describe("sandbox.host.start over HTTPS and HTTP/2", function()
  local srv
  setup(function() srv = sandbox_server.start { tls = true } end)
  teardown(function() srv:stop() end)
  before_each(function() srv:reset() end)

  local function h2(args)
    return curl("--http2 --cacert " .. q(srv.ca_file) .. " -u sandbox:sandbox " .. args)
  end

  it("answers the API over HTTP/2, sharing state with the HTTP listener", function()
    local out, code = h2("-w ' %{http_version}' -d '{\"email\":\"h2@example.com\"}' " .. srv.tls_url .. "/v1/contacts")
    assert.are.equal(0, code, out)
    assert.matches(" 2$", out)
    assert.are.equal(1, #srv:contacts())
  end)

  it("applies drop and truncate faults over HTTP/2 too", function()
    srv:fault({ kind = "drop", path = "/v1/settings" })
    local _, code = h2(srv.tls_url .. "/v1/settings")
    assert.are_not.equal(0, code)
    srv:fault({ kind = "truncate", path = "/v1/interests" })
    local out
    out, code = h2(srv.tls_url .. "/v1/interests")
    assert.are_not.equal(0, code, out)
    local _, ok = h2(srv.tls_url .. "/v1/interests")
    assert.are.equal(0, ok)
  end)

  it("answers 413 for a body over 1 MiB with the JSON envelope", function()
    local dir = shell.tmpdir("sandbox-big")
    shell.write_file(dir .. "/big.json", '{"feedback":"' .. ("x"):rep(2 * 1024 * 1024) .. '"}')
    local out, code = h2("-w ' %{http_code}' --data-binary @" .. q(dir .. "/big.json") .. " "
      .. srv.tls_url .. "/v1/contacts")
    shell.run("rm -rf " .. q(dir))
    assert.are.equal(0, code, out)
    assert.matches(" 413$", out)
    assert.matches('"result_text":"Payload Too Large"', out)
    local log = srv:log()
    assert.are.equal(413, log[#log].status)
  end)
end)
