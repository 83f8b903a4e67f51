--- `envoke export`: every matching contact exactly once, as CSV or JSONL.
--
-- Keyset paging: each page asks for `id > last id seen`, sorted by id, so a
-- contact added or deleted during the export never shifts a page (as
-- skip/limit paging would, repeating or missing contacts).
-- @module envoke.cli.export
local cli = require "envoke.cli"
local csv = require "envoke.csv"
local interrupt = require "envoke.cli.interrupt"
local schema = require "envoke.schema"

local export = {}

local PAGE = 100

-- The columns: the named fields, else every readable field and the custom fields seen on the first page.
local function columns(args, first_page)
  if args.fields then
    local list = {}
    for name in args.fields:gmatch("[^,]+") do
      name = name:match("^%s*(.-)%s*$")
      if not (schema.fields[name] or name:match("^custom_fields%..+")) then
        cli.stop(2, "--fields: unknown field %s", name)
      end
      list[#list + 1] = name
    end
    return list
  end
  local list = {}
  for _, name in ipairs(schema.order) do
    local spec = schema.fields[name]
    if spec and not spec.writeonly and name ~= "custom_fields" then list[#list + 1] = name end
  end
  local custom = {}
  for _, c in ipairs(first_page) do
    for name in pairs(c:fields().custom_fields or {}) do custom[name] = true end
  end
  local names = {}
  for name in pairs(custom) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do list[#list + 1] = "custom_fields." .. name end
  return list
end

-- What the API is asked for: the columns' fields, and always the id (the paging key).
local function api_fields(args, cols)
  if not args.fields then return nil end
  local want, out = { id = true }, { "id" }
  for _, name in ipairs(cols) do
    local field = name:match("^custom_fields%.") and "custom_fields" or name
    if not want[field] then want[field], out[#out + 1] = true, field end
  end
  return out
end

local function cell(f, name)
  local custom = name:match("^custom_fields%.(.+)$")
  local v
  if custom then v = type(f.custom_fields) == "table" and f.custom_fields[custom] or nil else v = f[name] end
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = tostring(x) end
    return table.concat(parts, ";")
  end
  if v == nil then return "" end
  return tostring(v)
end

local function jsonl_line(f, cols, args)
  local json = require "cjson"
  local out = f
  if args.fields then
    out = {}
    for _, name in ipairs(cols) do
      local custom = name:match("^custom_fields%.(.+)$")
      if custom then
        out.custom_fields = out.custom_fields or {}
        out.custom_fields[custom] = type(f.custom_fields) == "table" and f.custom_fields[custom] or nil
      else
        out[name] = f[name]
      end
    end
  end
  return json.encode(out) .. "\n"
end

-- The --filter option as a table, or nil.
local function parse_filter(args)
  if not args.filter then return nil end
  local filter = require("cjson.safe").decode(args.filter)
  if type(filter) ~= "table" then cli.stop(2, "--filter must be a JSON object, e.g. {\"city\":\"Toronto\"}") end
  return filter
end

local function open_output(args)
  if not args.output then return io.stdout end
  local f, problem = io.open(args.output, "w")
  if not f then cli.stop(2, "cannot write %s", problem) end
  return f
end

-- The page of contacts after id `last`, sorted by id: the page (or nil, err) and the filter it was read with.
local function read_page(client, filter, last, fields)
  local page_filter = { id = { ["$gt"] = last } }
  if filter then page_filter = { ["$and"] = { filter, page_filter } } end
  local ok, page, err = pcall(client.list, client, { filter = page_filter, sort = { id = "ASC" }, limit = PAGE,
                                                    fields = fields })
  if not ok then cli.stop(2, "%s", require("envoke.errors").reason(page)) end
  return page, err, page_filter
end

-- A page that could not be read: the export fails, or (some contacts written) stops there.
local function stopped(count, err)
  if count == 0 then cli.stop(2, "cannot list contacts: %s", tostring(err)) end
  io.stderr:write("envoke: export stopped after ", count, " contacts: ", tostring(err), "\n")
  return 1
end

-- The first page sets the columns and the fields asked for (the page is read again with only those);
-- CSV gets its header. Returns the columns, the fields and the page.
local function start_output(client, args, out, page, page_filter)
  local cols = columns(args, page)
  local fields = api_fields(args, cols)
  if fields and #page > 0 then
    page = assert(client:list{ filter = page_filter, sort = { id = "ASC" }, limit = PAGE, fields = fields })
  end
  if args.format == "csv" then out:write(csv.line(cols)) end
  return cols, fields, page
end

-- Writes a page's contacts; returns how many, and the last id (`last` for an empty page).
local function write_page(out, page, cols, args, last)
  local count = 0
  for _, c in ipairs(page) do
    local f = c:fields()
    if args.format == "csv" then
      local row = {}
      for i, name in ipairs(cols) do row[i] = cell(f, name) end
      out:write(csv.line(row, #cols))
    else
      out:write(jsonl_line(f, cols, args))
    end
    count = count + 1
    last = f.id
  end
  return count, last
end

-- What was written reaches the file and the client is let go, however the export ends.
local function close_all(out, client)
  out:flush()
  if out ~= io.stdout then out:close() end
  client:close()
end

--- Runs the export; returns the exit status.
-- @local
function export.run(args, state)
  local filter = parse_filter(args)
  local client = cli.client(args)
  local out = open_output(args)
  local last, count, cols, fields = 0, 0, nil, nil
  while not state.interrupted do
    local page, err, page_filter = read_page(client, filter, last, fields)
    if not page then
      close_all(out, client)
      return stopped(count, err)
    end
    if not cols then cols, fields, page = start_output(client, args, out, page, page_filter) end
    local written
    written, last = write_page(out, page, cols, args, last)
    count = count + written
    if #page < PAGE then break end
    interrupt.point(state)
  end
  close_all(out, client)
  io.stderr:write(("exported: %d contacts\n"):format(count))
  if state.interrupted then return 130 end
  return 0
end

return export
