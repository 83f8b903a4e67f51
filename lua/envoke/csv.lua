--- CSV as RFC 4180 has it, streamed: quoted fields with embedded commas,
-- quotes and line breaks, CRLF or LF records, a UTF-8 byte-order mark.
--
--    local reader = csv.reader(io.open("contacts.csv"))
--    for fields, line, problem in reader do ... end
--
-- A record whose bytes are not valid UTF-8, or whose quoting is broken,
-- comes back with a `problem` (its fields as well as they could be read),
-- so a caller can report that row and go on. Blank lines are skipped.
-- Pure Lua; memory holds one record at a time.
-- @module envoke.csv
local schema = require "envoke.schema"

local csv = {}

local BOM = "\239\187\191"

-- Splits one record's text (its physical lines joined with "\n").
-- @return fields, or fields and a problem
local function split(s)
  local fields, i, n = {}, 1, #s
  if not s:find('"', 1, true) then
    for field in (s .. ","):gmatch("([^,]*),") do fields[#fields + 1] = field end
    return fields
  end
  while true do
    if s:byte(i) == 34 then -- a quoted field
      local parts, j = {}, i + 1
      while true do
        local q = s:find('"', j, true)
        if not q then
          parts[#parts + 1] = s:sub(j)
          fields[#fields + 1] = table.concat(parts)
          return fields, "a quoted field is not closed"
        end
        parts[#parts + 1] = s:sub(j, q - 1)
        if s:byte(q + 1) == 34 then
          parts[#parts + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      fields[#fields + 1] = table.concat(parts)
      local c = s:byte(i)
      if c == nil then return fields end
      if c ~= 44 then
        return fields, ("unexpected text after a closing quote in field %d"):format(#fields)
      end
      i = i + 1
    else
      local c = s:find(",", i, true)
      local field = s:sub(i, (c or n + 1) - 1)
      if field:find('"', 1, true) then
        return fields, ("a quote inside unquoted field %d (quote the field and double the quote)"):format(#fields + 1)
      end
      fields[#fields + 1] = field
      if not c then return fields end
      i = c + 1
    end
  end
end

local function quotes(line)
  local _, n = line:gsub('"', "")
  return n
end

--- A record iterator over an open file.
-- Each call returns `fields, line, problem` (line: where the record starts;
-- problem: nil, or why the row cannot be trusted), or nil at the end.
-- @param f a file handle, read by lines
-- @treturn function
-- @local
function csv.reader(f)
  local line_no, first = 0, true
  return function()
    while true do
      local line = f:read("*l")
      if line == nil then return nil end
      line_no = line_no + 1
      if first then
        first = false
        if line:sub(1, 3) == BOM then line = line:sub(4) end
      end
      local start = line_no
      -- An odd number of quotes: the record goes on on the next line.
      local open = quotes(line) % 2 == 1
      local problem
      if open then
        local parts = { line }
        while open do
          local more = f:read("*l")
          if more == nil then break end
          line_no = line_no + 1
          parts[#parts + 1] = more
          if quotes(more) % 2 == 1 then open = false end
        end
        line = table.concat(parts, "\n")
      end
      if line:sub(-1) == "\r" then line = line:sub(1, -2) end
      if line ~= "" then
        local fields
        fields, problem = split(line)
        if not problem and line:find("[\128-\255]") and not schema.utf8_len(line) then
          problem = "the row is not valid UTF-8"
        end
        return fields, start, problem
      end
    end
  end
end

--- How many records a file holds (a quick pass that only follows quoting).
-- @tparam string path
-- @treturn integer|nil records, header included; nil when it cannot be read
-- @local
function csv.count(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local n, open = 0, false
  for line in f:lines() do
    if open then
      if quotes(line) % 2 == 1 then open = false end
    elseif line ~= "" and line ~= "\r" then
      n = n + 1
      if quotes(line) % 2 == 1 then open = true end
    end
  end
  f:close()
  return n
end

--- One field as CSV: quoted when it holds a comma, a quote, a line break, or edge spaces.
-- @tparam string s
-- @treturn string
-- @local
function csv.field(s)
  s = s == nil and "" or tostring(s)
  if s:find('[,"\r\n]') or s:find("^%s") or s:find("%s$") then
    return '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end

--- One record as a CSV line, with its CRLF (RFC 4180).
-- @tparam table fields strings (nil is an empty field), `n` of them
-- @tparam[opt] integer n how many fields (default #fields)
-- @treturn string
-- @local
function csv.line(fields, n)
  local out = {}
  for i = 1, n or #fields do out[i] = csv.field(fields[i]) end
  return table.concat(out, ",") .. "\r\n"
end

return csv
