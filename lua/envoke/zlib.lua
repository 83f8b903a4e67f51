--- gzip bodies for the cosocket transports: zlib's inflate through LuaJIT's
-- FFI. nginx itself links zlib, so its symbols are normally already in the
-- process. Without the FFI (PUC Lua, e.g. inside HAProxy) there is no
-- inflater, and a transport then does not ask for gzip.
-- @module envoke.zlib
local zlib = {}

local concat = table.concat

local loaded -- the inflate function, or false once found unavailable

-- Private names (redirected with __asm__) so another module's zlib
-- declarations cannot clash with these.
local CDEF = [[
  struct envoke_z_stream {
    const char *next_in; unsigned int avail_in; unsigned long total_in;
    unsigned char *next_out; unsigned int avail_out; unsigned long total_out;
    const char *msg; void *state; void *zalloc; void *zfree; void *opaque;
    int data_type; unsigned long adler; unsigned long reserved;
  };
  int envoke_inflateInit2_(struct envoke_z_stream *s, int bits, const char *v, int size) __asm__("inflateInit2_");
  int envoke_inflate(struct envoke_z_stream *s, int flush) __asm__("inflate");
  int envoke_inflateEnd(struct envoke_z_stream *s) __asm__("inflateEnd");
  const char *envoke_zlibVersion(void) __asm__("zlibVersion");
]]

-- The library holding zlib's symbols: the process itself, else libz.
local function find_library(ffi)
  for _, name in ipairs{ false, "z", "libz.so.1" } do
    local found, lib = pcall(function()
      local l = name and ffi.load(name) or ffi.C
      local _ = l.envoke_inflate -- resolves the symbol, or raises
      return l
    end)
    if found then return lib end
  end
end

-- The inflate function over a found library.
local function inflater(ffi, lib)
  local CHUNK = 65536
  local out = ffi.new("unsigned char[?]", CHUNK)
  local stream_size = ffi.sizeof("struct envoke_z_stream")
  local version = lib.envoke_zlibVersion()
  -- The buffer is shared: nothing here yields.
  return function(data, max)
    local s = ffi.new("struct envoke_z_stream")
    if lib.envoke_inflateInit2_(s, 15 + 32, version, stream_size) ~= 0 then
      return nil, "protocol", "zlib could not start inflating"
    end
    s.next_in, s.avail_in = data, #data
    local parts, total = {}, 0
    local rc
    repeat
      s.next_out, s.avail_out = out, CHUNK
      rc = lib.envoke_inflate(s, 0)
      local n = CHUNK - s.avail_out
      total = total + n
      if total > max then
        lib.envoke_inflateEnd(s)
        return nil, "too_large", ("response body is larger than max_body (%d bytes) once decompressed"):format(max)
      end
      if n > 0 then parts[#parts + 1] = ffi.string(out, n) end
    until rc ~= 0
    lib.envoke_inflateEnd(s)
    if rc ~= 1 then
      return nil, "protocol", rc == -5 and "the gzip response body is truncated" or "the gzip response body is corrupt"
    end
    return concat(parts)
  end
end

--- The inflater, or nil where there is none (found once per Lua state).
-- It inflates a whole gzip (or zlib) body, never to more than `max` bytes,
-- so a small compressed body cannot expand without bound:
-- `inflate(data, max)` returns the body, or nil, kind, message.
-- @treturn function|nil
-- @local
function zlib.inflater()
  if loaded == nil then
    loaded = false
    local ok, ffi = pcall(require, "ffi")
    if ok and pcall(ffi.cdef, CDEF) then
      local lib = find_library(ffi)
      if lib then loaded = inflater(ffi, lib) end
    end
  end
  return loaded or nil
end

return zlib
