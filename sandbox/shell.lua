--- Processes and files for the sandbox host, the launcher and the specs.
-- Only io.popen and io.open, so it runs under Lua 5.1-5.4 and LuaJIT alike.
-- @module sandbox.shell
local shell = {}

--- Quotes s as one word for /bin/sh.
function shell.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs a shell command (stderr joins stdout).
-- The sanitizer run preloads ASan into the interpreter; the commands run here
-- never need it, and some (procps' ps) hang with it, so it is dropped.
-- @return its output and its exit code; the code is read from the output
-- because os.execute and io.popen report it differently across versions.
function shell.run(cmd)
  local pipe = assert(io.popen("unset LD_PRELOAD; { " .. cmd .. "\n} 2>&1; echo \"@rc=$?\"", "r"))
  local out = pipe:read("*a")
  pipe:close()
  local body, code = out:match("^(.-)@rc=(%d+)\n?$")
  if not body then return out, -1 end
  return body, tonumber(code)
end

--- The whole content of a file, or nil when it cannot be read.
function shell.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

--- Writes text to a file, raising on failure.
function shell.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

--- A new private directory under $TMPDIR (or /tmp); the caller removes it.
function shell.tmpdir(tag)
  local out, code = shell.run("mktemp -d \"${TMPDIR:-/tmp}/" .. (tag or "envoke") .. ".XXXXXX\"")
  assert(code == 0, "mktemp failed: " .. out)
  return (out:gsub("%s+$", ""))
end

return shell
