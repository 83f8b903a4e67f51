-- The envoke command against the sandbox: dry run, a killed and resumed
-- import, Ctrl-C, export round trip, exit codes, progress on a terminal.
local sandbox_server = require "sandbox_server"

-- The interpreter running this spec runs the command too (bin/envoke picks build/<version>).
local LUA = rawget(_G, "jit") and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function lines_of(path)
  local n = 0
  for _ in (slurp(path) or ""):gmatch("[^\n]*\n") do n = n + 1 end
  return n
end

describe("envoke command", function()
  local srv, dir
  setup(function()
    srv = sandbox_server.start()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
  end)
  teardown(function()
    if srv then srv:stop() end
    if dir then os.execute("rm -rf " .. dir) end
  end)
  before_each(function() srv:reset() end)

  local function env(extra)
    return ("ENVOKE_BASE_URL=%s ENVOKE_API_ID=%s ENVOKE_API_KEY=%s %s"):format(srv.url, srv.api_id, srv.api_key,
      extra or "")
  end

  -- Runs the command; returns its exit status and what it printed (stdout, stderr).
  local function envoke(args, extra_env)
    local out, err = dir .. "/out", dir .. "/err"
    local cmd = ("%s %s bin/envoke %s >%s 2>%s; echo $?"):format(env(extra_env), LUA, args, out, err)
    local p = io.popen(cmd)
    local code = tonumber(p:read("*a"):match("(%d+)"))
    p:close()
    return code, slurp(out), slurp(err)
  end

  -- Starts the command in the background; returns its pid.
  local function start(args)
    local pidfile = dir .. "/pid"
    os.execute(("%s %s bin/envoke %s >%s/bg.out 2>%s/bg.err & echo $! > %s"):format(env(), LUA, args, dir, dir,
      pidfile))
    return tonumber(slurp(pidfile))
  end

  local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
    or os.execute("kill -0 " .. pid .. " 2>/dev/null") == 0 end

  local function wait_gone(pid)
    for _ = 1, 300 do
      if not alive(pid) then return true end
      os.execute("sleep 0.05")
    end
    return false
  end

  local function wait_lines(path, n)
    for _ = 1, 400 do
      if lines_of(path) >= n then return true end
      os.execute("sleep 0.02")
    end
    return false
  end

  local function rows(n, bad_every)
    local out = { "email,first_name,city" }
    for i = 1, n do
      if bad_every and i % bad_every == 0 then
        out[#out + 1] = ("bad%d,Bad,Nowhere"):format(i) -- not an email: a row error
      else
        out[#out + 1] = ("r%05d@example.com,N%d,Ottawa"):format(i, i)
      end
    end
    return table.concat(out, "\n") .. "\n"
  end

  local function stored()
    local count, total = {}, 0
    for _, c in ipairs(srv:contacts()) do
      count[c.email] = (count[c.email] or 0) + 1
      total = total + 1
    end
    return count, total
  end

  local function writes()
    local n = 0
    for _, r in ipairs(srv:log()) do
      if r.method ~= "GET" then n = n + 1 end
    end
    return n
  end

  it("dry run: reports every bad row with its reason and sends no write", function()
    local file = dir .. "/dry.csv"
    write(file, table.concat({
      "email,first_name,interests,autoresponders,consent_status,custom_fields.barcode",
      "a@example.com,Ann,Newsletter;Specials,,,A-1",
      "b@example.com,Bob,Golf,,,",                      -- no such interest
      "c@example.com,Cy,,Nope,,",                       -- no such nurture
      "d@example.com,Dee,,,Express,",                   -- consent without a description
      "not-an-email,Eve,,,,",
      "f@example.com,ThisFirstNameIsFarTooLongForEnvoke,,,,",
    }, "\n") .. "\n")
    local code, _, err = envoke("import " .. file .. " --dry-run --errors " .. dir .. "/dry.err")
    assert.are.equal(1, code, err)
    assert.truthy(err:find("checked: 1 ok, 5 failed, 0 skipped", 1, true), err)
    local report = slurp(dir .. "/dry.err")
    assert.truthy(report:find("^email,first_name,interests,autoresponders,consent_status,custom_fields.barcode,"
      .. "row,reason"))
    for _, want in ipairs{ "Golf is not one of the account's interests", "Nope is not one of the account's nurtures",
                           "needs a description", "not an email address", "first_name" } do
      assert.truthy(report:find(want, 1, true), want .. " in " .. report)
    end
    assert.are.equal(0, writes())
    assert.are.equal(0, #srv:contacts())
  end)

  it("imports 3,000 rows killed with SIGKILL midway and resumed: each row stored once, bad rows once", function()
    srv:settings{ allow_duplicate_emails = true } -- a second insert of a row would be stored, not refused
    local file, journal, errs = dir .. "/big.csv", dir .. "/big.journal", dir .. "/big.err"
    write(file, rows(3000, 250))
    local args = ("import %s --op insert --journal %s --errors %s --concurrency 16"):format(file, journal, errs)
    local pid = start(args .. " --rate-limit 1000")
    assert.is_true(wait_lines(journal, 1500), "the journal did not grow")
    os.execute("kill -KILL " .. pid)
    assert.is_true(wait_gone(pid))
    local _, before = stored()
    assert.is_true(before > 0 and before < 2988, "killed too late to test anything: " .. before .. " stored")

    local code, _, err = envoke(args)
    assert.are.equal(1, code, err) -- the bad rows failed
    local count, total = stored()
    assert.are.equal(2988, total)
    for i = 1, 3000 do
      if i % 250 ~= 0 then assert.are.equal(1, count[("r%05d@example.com"):format(i)], "row " .. i) end
    end
    local skipped = tonumber(err:match("(%d+) skipped"))
    assert.is_true(skipped > 0, err)
    -- Every bad row is in the errors file exactly once, across both runs.
    local report, seen = slurp(errs), 0
    for i = 250, 3000, 250 do
      local _, n = report:gsub("\nbad" .. i .. ",", "")
      assert.are.equal(1, n, "bad" .. i)
      seen = seen + 1
    end
    assert.are.equal(12, seen)
    assert.are.equal(13, lines_of(errs)) -- the header and the 12 bad rows
  end)

  it("stops on Ctrl-C after the calls in flight, and a rerun finishes the job", function()
    local file, journal = dir .. "/int.csv", dir .. "/int.journal"
    write(file, rows(2000))
    local args = ("import %s --journal %s"):format(file, journal)
    local pid = start(args .. " --rate-limit 500")
    assert.is_true(wait_lines(journal, 200), "the journal did not grow")
    os.execute("kill -INT " .. pid)
    assert.is_true(wait_gone(pid))
    local err = slurp(dir .. "/bg.err")
    assert.truthy(err:find("interrupted", 1, true), err)
    assert.truthy(err:find("imported: %d+ ok, 0 failed, 0 skipped"), err)
    local done = tonumber(err:match("imported: (%d+) ok"))
    local _, total = stored()
    assert.are.equal(done, total) -- nothing in flight was abandoned, nothing claimed that was not done
    local code, _, err2 = envoke(args)
    assert.are.equal(0, code, err2)
    assert.truthy(err2:find(("imported: %d ok, 0 failed, %d skipped"):format(2000 - done, done), 1, true), err2)
    local _, all = stored()
    assert.are.equal(2000, all)
  end)

  it("keeps every row written when a later page fails (export.run called in-process)", function()
    local list = {}
    for i = 1, 150 do list[i] = { email = ("p%03d@example.com"):format(i), company = ("Company %d"):format(i) } end
    local _, s = srv:client():insert_all(list)
    assert.are.equal(150, s.succeeded)
    srv:fault{ method = "GET", path = "/v1/contacts", after = 1, status = 400 } -- the second page fails
    local out = dir .. "/partial.csv"
    -- As bin/envoke runs it: in a coroutine, which yields between pages (interrupt.point).
    local run = coroutine.wrap(function()
      return "done", require("envoke.cli.export").run({ format = "csv", output = out, base_url = srv.url,
                                                        api_id = srv.api_id, api_key = srv.api_key }, {})
    end)
    local tag, code
    repeat tag, code = run() until tag == "done"
    assert.are.equal(1, code)
    assert.are.equal(101, lines_of(out)) -- the header and the first page, flushed and closed
    assert.truthy(slurp(out):find("p100@example.com", 1, true))
  end)

  it("exports every contact once, and the export imports back as it was", function()
    local list = {}
    for i = 1, 250 do
      list[i] = { email = ("x%03d@example.com"):format(i), first_name = "F" .. i,
                  city = i % 2 == 0 and "Hull" or "Aylmer",
                  company = 'Acme, "Quoted"\nLtd', interests = { "Newsletter" },
                  custom_fields = { barcode = "B" .. i } }
    end
    local client = srv:client()
    local _, s = client:insert_all(list)
    assert.are.equal(250, s.succeeded)
    local code, _, err = envoke("export -o " .. dir .. "/all.csv")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("exported: 250 contacts", 1, true), err)
    code, _, err = envoke("export --format jsonl --filter '{\"city\":\"Hull\"}' --fields email,city -o "
      .. dir .. "/hull.jsonl")
    assert.are.equal(0, code, err)
    local hull = 0
    for line in io.lines(dir .. "/hull.jsonl") do
      hull = hull + 1
      assert.truthy(line:find('"city":"Hull"', 1, true), line)
      assert.is_nil(line:find("first_name", 1, true))
    end
    assert.are.equal(125, hull)

    srv:reset()
    code, _, err = envoke("import " .. dir .. "/all.csv --op insert")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("imported: 250 ok, 0 failed, 0 skipped", 1, true), err)
    local by_email = {}
    for _, c in ipairs(srv:contacts()) do by_email[c.email] = c end
    for _, want in ipairs(list) do
      local got = by_email[want.email]
      assert.are.equal(want.first_name, got.first_name)
      assert.are.equal(want.city, got.city)
      assert.are.equal(want.company, got.company)
      assert.are.same({ "Newsletter" }, got.interests)
      assert.are.equal(want.custom_fields.barcode, got.custom_fields.barcode)
    end
  end)

  it("reads CSV as RFC 4180 has it: quotes, commas and newlines inside, CRLF, BOM; bad UTF-8 is a row error", function()
    local file = dir .. "/edge.csv"
    write(file, "\239\187\191email,company,city\r\n"
      .. "e1@example.com,\"Smith, Jones & \"\"Co\"\"\",Ottawa\r\n"
      .. "e2@example.com,\"Line one\nLine two\",\r\n"
      .. "\r\n"
      .. "e3@example.com,Caf\195\169,Qu\195\169bec\r\n"
      .. "e4@example.com,Bad\255Byte,Ottawa\r\n"
      .. "e5@example.com,\"unclosed,Ottawa\r\n")
    local code, _, err = envoke("import " .. file .. " --op insert --errors " .. dir .. "/edge.err")
    assert.are.equal(1, code, err)
    assert.truthy(err:find("imported: 3 ok, 2 failed, 0 skipped", 1, true), err)
    local by_email = {}
    for _, c in ipairs(srv:contacts()) do by_email[c.email] = c end
    assert.are.equal('Smith, Jones & "Co"', by_email["e1@example.com"].company)
    assert.are.equal("Line one\nLine two", by_email["e2@example.com"].company)
    assert.are.equal("Caf\195\169", by_email["e3@example.com"].company)
    assert.are.equal("Qu\195\169bec", by_email["e3@example.com"].city)
    local report = slurp(dir .. "/edge.err")
    assert.truthy(report:find("not valid UTF-8", 1, true), report)
    assert.truthy(report:find("not closed", 1, true), report)
  end)

  it("imports JSONL", function()
    local file = dir .. "/c.jsonl"
    write(file, '{"email":"j1@example.com","city":"Banff"}\n\n{"email":"j2@example.com","interests":"Newsletter"}\n'
      .. "[1,2]\n")
    local code, _, err = envoke("import " .. file)
    assert.are.equal(1, code, err)
    assert.truthy(err:find("imported: 2 ok, 1 failed, 0 skipped", 1, true), err)
  end)

  it("exits 0 when all rows succeed, 1 when some fail, 2 on usage errors or when nothing can run", function()
    local good, unknown = dir .. "/good.csv", dir .. "/unknown.csv"
    write(good, "email\ng1@example.com\n")
    write(unknown, "email,shoe_size\ng2@example.com,9\n")
    local code, _, err = envoke("import " .. good)
    assert.are.equal(0, code, err)
    assert.truthy(err:find("imported: 1 ok, 0 failed, 0 skipped", 1, true), err)
    code, _, err = envoke("import " .. good .. " --op insert")
    assert.are.equal(1, code, err) -- a duplicate now
    for _, case in ipairs{
      { "import " .. unknown, "unknown column in the header: shoe_size" },
      { "import " .. dir .. "/missing.csv", "cannot open" },
      { "import " .. good .. " --op merge", "must be one of" },
      { "import", "missing argument" },
      { "import " .. good .. " --concurrency 0", "--concurrency must be" },
      { "frobnicate", "frobnicate" },
    } do
      code, _, err = envoke(case[1])
      assert.are.equal(2, code, case[1] .. ": " .. err)
      assert.truthy(err:find(case[2], 1, true), case[1] .. ": " .. err)
      local _, lines = err:gsub("\n", "")
      assert.are.equal(1, lines, case[1] .. ": " .. err)
    end
    code, _, err = envoke("import " .. good, "ENVOKE_API_KEY=wrong")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("auth", 1, true), err)
    code, _, err = envoke("ping", "ENVOKE_BASE_URL=http://127.0.0.1:9")
    assert.are.equal(2, code, err)
    code = envoke("ping")
    assert.are.equal(0, code)
  end)

  it("draws a progress bar on a terminal, and plain progress lines elsewhere", function()
    local file = dir .. "/p.csv"
    write(file, rows(300))
    local log = dir .. "/pty.log"
    local cmd = ("%s %s bin/envoke import %s --rate-limit 200"):format(env(), LUA, file)
    os.execute(("script -qfec %s %s >/dev/null 2>&1"):format(sh_quote(cmd), log))
    local screen = slurp(log)
    assert.truthy(screen:find("\r%[[#.]+%] %d+/300"), screen)
    assert.truthy(screen:find("ETA", 1, true), screen)
    assert.truthy(screen:find("imported: 300 ok, 0 failed, 0 skipped", 1, true), screen)
    srv:reset()
    local code, _, err = envoke("import " .. file .. " --rate-limit 200 --progress-interval 0.2")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("progress: %d+/300 rows"), err)
    assert.is_nil(err:find("\r", 1, true))
  end)
end)
