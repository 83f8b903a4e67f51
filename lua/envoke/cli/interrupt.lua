--- Ctrl-C for the `envoke` command: the first SIGINT asks the running
-- command to stop taking new rows, finish the calls in flight and flush its
-- journal; a second one ends the process at once (safe too: the journal never
-- claims more than was done).
--
-- No C code: the Lua interpreters do it themselves.
--
-- - PUC Lua (5.1-5.4): the standalone `lua` turns SIGINT into an error
--   ("interrupted!") raised by a hook set on the main thread only. The
--   command runs in a coroutine that yields at safe points, so the error can
--   only surface in the main thread, between two resumes, where nothing is
--   half done; it is caught and becomes a flag. The interpreter puts back the
--   default action first, so a second Ctrl-C ends the process.
-- - LuaJIT: its hooks are global (they would fire inside the coroutine), so
--   SIGINT is blocked instead and polled with sigtimedwait through the FFI
--   at the same safe points; once seen, it is unblocked with the default action.
-- @module envoke.cli.interrupt
local interrupt = {}

local SIGINT, SIG_BLOCK, SIG_UNBLOCK = 2, 0, 1

local ffi_state -- LuaJIT: { ffi, set }

local function luajit_setup()
  local ok, ffi = pcall(require, "ffi")
  if not ok then return false end
  pcall(ffi.cdef, [[
    typedef struct { unsigned long val[16]; } envoke_sigset_t;
    typedef struct { long tv_sec; long tv_nsec; } envoke_timespec_t;
    int sigemptyset(envoke_sigset_t *set);
    int sigaddset(envoke_sigset_t *set, int signum);
    int pthread_sigmask(int how, const envoke_sigset_t *set, envoke_sigset_t *old);
    int sigtimedwait(const envoke_sigset_t *set, void *info, const envoke_timespec_t *timeout);
    typedef void (*envoke_handler_t)(int);
    envoke_handler_t signal(int signum, envoke_handler_t handler);
  ]])
  local set = ffi.new("envoke_sigset_t")
  ffi.C.sigemptyset(set)
  ffi.C.sigaddset(set, SIGINT)
  if ffi.C.pthread_sigmask(SIG_BLOCK, set, nil) ~= 0 then return false end
  ffi_state = { ffi = ffi, set = set, zero = ffi.new("envoke_timespec_t") }
  return true
end

-- LuaJIT: true once a SIGINT is pending (it is taken, and the default action restored).
local function luajit_pending()
  local s = ffi_state
  if not s then return false end
  local C = s.ffi.C
  if C.sigtimedwait(s.set, nil, s.zero) ~= SIGINT then return false end
  C.signal(SIGINT, s.ffi.cast("envoke_handler_t", 0)) -- SIG_DFL: a second Ctrl-C ends the process
  C.pthread_sigmask(SIG_UNBLOCK, s.set, nil)
  ffi_state = nil
  return true
end

--- Runs `body(state)` so that Ctrl-C sets `state.interrupted` (and calls
-- `on_interrupt()`) instead of killing it.
-- `body` must call `interrupt.point(state)` often (it yields); it stores its
-- exit code in `state.code`.
-- @treturn integer the exit code
-- @local
function interrupt.run(body, on_interrupt)
  local state = { interrupted = false, on_interrupt = on_interrupt }
  state.luajit = rawget(_G, "jit") ~= nil and luajit_setup()
  local co = coroutine.create(function() state.code = body(state) end)
  local function drive()
    while coroutine.status(co) ~= "dead" do
      local ok, problem = coroutine.resume(co)
      if not ok then state.failure = { problem, debug.traceback(co) } end
    end
  end
  while true do
    local ok, problem = pcall(drive)
    if ok then break end
    -- Only the interpreter's SIGINT hook raises in this thread.
    if not tostring(problem):find("interrupted!", 1, true) then error(problem, 0) end
    if not state.interrupted then
      state.interrupted = true
      if on_interrupt then on_interrupt() end
    end
  end
  if state.failure then error(state.failure[1], 0) end
  return state.code
end

--- A safe point: yields to the driver (where a PUC SIGINT surfaces), polls LuaJIT's.
-- @treturn boolean true once interrupted
-- @local
function interrupt.point(state)
  if state.luajit and not state.interrupted and luajit_pending() then
    state.interrupted = true
    if state.on_interrupt then state.on_interrupt() end
  end
  coroutine.yield()
  return state.interrupted
end

return interrupt
