--- The `envoke` command: import, export, ping, sandbox.
--
--    envoke import contacts.csv --op upsert --journal run.journal --errors failed.csv
--    envoke export --filter '{"city":"Toronto"}' --fields email,first_name -o toronto.csv
--    envoke ping
--    envoke sandbox --port 8080
--
-- Exit status: 0 when every row succeeded, 1 when some failed, 2 on a usage
-- error or when nothing could run (bad credentials, unreachable server),
-- 130 when interrupted (Ctrl-C: the calls in flight finish and the journal is
-- flushed first). Credentials and target come from ENVOKE_API_ID,
-- ENVOKE_API_KEY, ENVOKE_BASE_URL and ENVOKE_CA_FILE, or the flags.
-- @module envoke.cli
local cli = {}

--- A usage error or a failure that stops the command: exit status 2 and a one-line reason.
-- @local
function cli.stop(code, fmt, ...)
  error({ envoke_cli_exit = code, message = select("#", ...) > 0 and fmt:format(...) or fmt }, 0)
end

local function parser()
  local ok, argparse = pcall(require, "argparse")
  if not ok then
    cli.stop(2, "the argparse module is missing (Debian: apt-get install lua-argparse; LuaRocks: argparse)")
  end
  local p = argparse("envoke", "Envoke contacts from the command line: import, export, ping, sandbox.")
    :epilog("Credentials: ENVOKE_API_ID, ENVOKE_API_KEY, ENVOKE_BASE_URL, ENVOKE_CA_FILE (or the flags).\n"
      .. "Exit status: 0 all ok, 1 some rows failed, 2 usage error or nothing could run, 130 interrupted.")
  p:command_target("command")
  p:option("--base-url", "API base URL (default: ENVOKE_BASE_URL, else https://e1.envoke.com)")
  p:option("--api-id", "API id (default: ENVOKE_API_ID)")
  p:option("--api-key", "API key (default: ENVOKE_API_KEY)")
  p:option("--ca-file", "CA bundle for TLS (default: ENVOKE_CA_FILE)")
  p:option("--timeout", "seconds per request", "10")

  local import = p:command("import", "Import contacts from a CSV (RFC 4180) or JSONL file ('-': stdin).")
  import:argument("file", "the file to import")
  import:option("--format", "csv or jsonl (default: from the extension)"):choices{ "csv", "jsonl" }
  import:option("--op", "upsert, save or insert", "upsert"):choices{ "upsert", "save", "insert" }
  import:option("--keyfield", "email, remote_id or id", "email"):choices{ "email", "remote_id", "id" }
  import:option("--concurrency", "requests in flight (1-256)", "8")
  import:option("--journal", "resume file: a rerun with the same input skips what is done")
  import:option("--errors", "write the failed rows here, as CSV with a reason column")
  import:flag("--dry-run", "validate every row and the names against the account; send no write")
  import:option("--on-overlong", "error or truncate: a text longer than its field allows", "error")
    :choices{ "error", "truncate" }
  import:option("--rate-limit", "at most this many requests per second")
  import:option("--progress-interval", "seconds between progress lines when not on a terminal", "5")

  local export = p:command("export", "Export contacts (every one exactly once, paged by id).")
  export:option("--filter", 'a filter as JSON, e.g. {"city":"Toronto"}')
  export:option("--fields", "comma-separated field names (custom_fields.NAME for a custom field)")
  export:option("--format", "csv or jsonl", "csv"):choices{ "csv", "jsonl" }
  export:option("-o --output", "write here instead of stdout")

  p:command("ping", "Check the credentials and the server (GET /v1/settings).")

  local sandbox = p:command("sandbox", "Run the offline sandbox server (from a checkout: sandbox/run).")
  sandbox:option("--port", "port on 127.0.0.1 (default: a free one)")
  sandbox:option("--tls-port", "also HTTPS with HTTP/2 on this port")
  sandbox:option("--data", "keep the contacts in this JSON file")
  sandbox:option("--catalogue", "the account's interests, nurtures and custom fields (JSON)")
  return p
end

local function number(args, name, min, max)
  local text = args[name]
  if text == nil then return nil end
  local n = tonumber(text)
  if not n or n < min or n > max then
    cli.stop(2, "--%s must be a number from %s to %s, got %s", name:gsub("_", "-"), min, max, text)
  end
  return n
end
cli.number = number

--- An envoke client from the flags and the environment; a bad option stops with status 2.
-- @local
function cli.client(args, extra)
  local opts = { base_url = args.base_url, api_id = args.api_id, api_key = args.api_key, ca_file = args.ca_file,
                 timeout = number(args, "timeout", 0.001, 86400) }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local ok, client = pcall(require("envoke").new, opts)
  if not ok then cli.stop(2, "%s", require("envoke.errors").reason(client)) end
  return client
end

local function ping(args)
  local client = cli.client(args)
  local settings, err = client:ping()
  client:close()
  if not settings then cli.stop(2, "ping failed: %s", tostring(err)) end
  io.stdout:write(("ok: %s"):format(tostring(settings.name or "the credentials work")), "\n")
  return 0
end

-- The checkout this module runs from, if any (sandbox/run lives there).
local function checkout()
  local source = debug.getinfo(1, "S").source:match("^@(.*)$")
  local root = source and source:match("^(.*)/lua/envoke/cli/init%.lua$")
  if root and io.open(root .. "/sandbox/run", "r") then return root end
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sandbox(args)
  local root = checkout()
  if not root then cli.stop(2, "envoke sandbox runs from a checkout of lua-envoke (its sandbox/run)") end
  local cmd = { quote(root .. "/sandbox/run") }
  for _, k in ipairs{ "port", "tls_port", "data", "catalogue" } do
    if args[k] then cmd[#cmd + 1] = "--" .. k:gsub("_", "-") .. " " .. quote(args[k]) end
  end
  local ok, how, code = os.execute(table.concat(cmd, " "))
  if type(ok) == "number" then return ok == 0 and 0 or 2 end
  if how == "exit" then return code end
  return 130
end

--- Runs the command with these arguments; returns the exit status.
-- @tparam table argv the arguments (without the program name)
-- @treturn integer
-- @local
function cli.main(argv)
  local ok, result = pcall(function()
    local p = parser()
    local parsed, args = p:pparse(argv)
    if not parsed then cli.stop(2, "%s (envoke --help)", args) end
    if args.command == "ping" then return ping(args) end
    if args.command == "sandbox" then return sandbox(args) end
    local interrupt = require "envoke.cli.interrupt"
    local run = require("envoke.cli." .. args.command).run
    return interrupt.run(function(state) return run(args, state) end, function()
      io.stderr:write("\nenvoke: interrupted: finishing the calls in flight (Ctrl-C again to stop at once)\n")
    end)
  end)
  if ok then return result end
  if type(result) == "table" and result.envoke_cli_exit then
    io.stderr:write("envoke: ", result.message, "\n")
    return result.envoke_cli_exit
  end
  io.stderr:write("envoke: ", require("envoke.errors").reason(result), "\n")
  return 2
end

return cli
