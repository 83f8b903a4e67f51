--- `envoke import FILE`: rows of a CSV or JSONL file become contacts,
-- streamed through the bulk engine (memory stays flat whatever the size).
--
-- CSV: the header row names the fields (`custom_fields.NAME` for a custom
-- field; `interests` and `autoresponders` hold `;`-separated names). The
-- read-only columns an export writes (`external_id`, `consent_expiry`,
-- `date_created`, and `id` unless `--keyfield id`) are ignored. JSONL: one
-- object per line, field names as keys.
-- @module envoke.cli.import
local cli = require "envoke.cli"
local csv = require "envoke.csv"
local interrupt = require "envoke.cli.interrupt"
local progress = require "envoke.cli.progress"
local schema = require "envoke.schema"

local import = {}

local IGNORED = { external_id = true, consent_expiry = true, date_created = true }

-- What each column of the header becomes: { name, kind } or false (ignored).
local function columns_of(header, args)
  local cols, unknown, ignored = {}, {}, {}
  for i, name in ipairs(header) do
    name = name:match("^%s*(.-)%s*$")
    local spec = schema.fields[name]
    if name:match("^custom_fields%.(.+)$") then
      cols[i] = { name = name:match("^custom_fields%.(.+)$"), kind = "custom" }
    elseif name == "id" then
      cols[i] = args.keyfield == "id" and { name = "id", kind = "id" } or false
      if not cols[i] then ignored[#ignored + 1] = name end
    elseif IGNORED[name] then
      cols[i], ignored[#ignored + 1] = false, name
    elseif spec and (spec.type == "interests" or spec.type == "autoresponders") then
      cols[i] = { name = name, kind = "names" }
    elseif spec and spec.type == "boolean" then
      cols[i] = { name = name, kind = "boolean" }
    elseif spec and spec.type ~= "custom_fields" then
      cols[i] = { name = name, kind = "text" }
    else
      unknown[#unknown + 1] = name == "" and ("column " .. i .. " (no name)") or name
    end
  end
  if #unknown > 0 then
    cli.stop(2, "unknown column%s in the header: %s (use field names, or custom_fields.NAME)",
      #unknown > 1 and "s" or "", table.concat(unknown, ", "))
  end
  return cols, ignored
end

local BOOLEAN = { ["true"] = true, ["1"] = true, yes = true, ["false"] = false, ["0"] = false, no = false }

local function split_names(text)
  local list = {}
  for name in text:gmatch("[^;]+") do
    name = name:match("^%s*(.-)%s*$")
    if name ~= "" then list[#list + 1] = name end
  end
  return list
end

-- A CSV record as contact fields; blank cells change nothing (as in the API).
local function fields_of_record(record, cols)
  local fields = {}
  for i, col in pairs(cols) do
    local v = record[i]
    if col and v and v ~= "" then
      if col.kind == "text" then
        fields[col.name] = v
      elseif col.kind == "custom" then
        fields.custom_fields = fields.custom_fields or {}
        fields.custom_fields[col.name] = v
      elseif col.kind == "names" then
        fields[col.name] = split_names(v)
      elseif col.kind == "boolean" then
        local b = BOOLEAN[v:lower()]
        if b == nil then return nil, ("%s must be true or false, got %s"):format(col.name, v) end
        fields[col.name] = b
      elseif col.kind == "id" then
        local n = tonumber(v)
        if not n then return nil, "id must be a number, got " .. v end
        fields.id = n
      end
    end
  end
  if #record > #cols then return nil, ("the row has %d fields, the header %d"):format(#record, #cols) end
  return fields
end

-- A JSONL line as contact fields.
local function fields_of_json(line, args)
  local json = require("cjson.safe")
  if not schema.utf8_len(line) then return nil, "the row is not valid UTF-8" end
  local data = json.decode(line)
  if type(data) ~= "table" or schema.is_array(data) and next(data) ~= nil then
    return nil, "the line is not a JSON object"
  end
  local fields = {}
  for k, v in pairs(data) do
    if v ~= json.null and not IGNORED[k] and (k ~= "id" or args.keyfield == "id") then
      if (k == "interests" or k == "autoresponders") and type(v) == "string" then v = split_names(v) end
      local custom = type(k) == "string" and k:match("^custom_fields%.(.+)$")
      if custom then
        fields.custom_fields = fields.custom_fields or {}
        fields.custom_fields[custom] = v
      else
        fields[k] = v
      end
    end
  end
  return fields
end

-- The source: an iterator of (fields | nil, problem, raw) per data row, and the error-file header.
local function source(args, f)
  if args.format == "jsonl" then
    return function()
      while true do
        local line = f:read("*l")
        if line == nil then return nil end
        if line:sub(-1) == "\r" then line = line:sub(1, -2) end
        if line:find("%S") then
          local fields, problem = fields_of_json(line, args)
          return true, fields, problem, { line }
        end
      end
    end, { "row", "reason", "json" }
  end
  local records = csv.reader(f)
  local header, _, problem = records()
  if not header then cli.stop(2, "%s is empty (no header row)", args.file) end
  if problem then cli.stop(2, "the header row of %s: %s", args.file, problem) end
  local cols, ignored = columns_of(header, args)
  if #ignored > 0 then
    io.stderr:write("envoke: ignoring read-only column", #ignored > 1 and "s" or "", ": ",
      table.concat(ignored, ", "), "\n")
  end
  local err_header = {}
  for i, name in ipairs(header) do err_header[i] = name end
  err_header[#err_header + 1] = "row"
  err_header[#err_header + 1] = "reason"
  return function()
    local record, _, bad = records()
    if not record then return nil end
    if bad then return true, nil, bad, record end
    local fields, why = fields_of_record(record, cols)
    return true, fields, why, record
  end, err_header, #header
end

-- The errors file: failed rows as CSV, with their row number and the reason.
-- On a resumed run it is appended to, and a row already in it is not written again.
local function errors_file(args, header, width, resuming)
  if not args.errors then return nil end
  local seen = {}
  local existing = resuming and io.open(args.errors, "r")
  local row_col = args.format == "jsonl" and 1 or #header - 1
  if existing then
    local records = csv.reader(existing)
    records() -- the header
    for record in records do seen[record[row_col]] = true end
    existing:close()
  end
  local f, problem = io.open(args.errors, existing and "a" or "w")
  if not f then cli.stop(2, "cannot write the errors file: %s", problem) end
  if not existing then f:write(csv.line(header)) end
  return {
    add = function(row, raw, reason)
      if seen[tostring(row)] then return end
      local out = {}
      if args.format == "jsonl" then
        out = { tostring(row), reason, raw[1] }
      else
        for i = 1, width do out[i] = raw[i] end
        out[width + 1], out[width + 2] = tostring(row), reason
      end
      f:write(csv.line(out, #header))
      f:flush() -- before the journal's record of the same row
    end,
    close = function() f:close() end,
  }
end

local function open_input(args)
  if args.file == "-" then return io.stdin end
  local f, problem = io.open(args.file, "r")
  if not f then cli.stop(2, "cannot open %s", problem) end
  return f
end

local function lower_set(map)
  local out = {}
  for name in pairs(map or {}) do out[name:lower()] = true end
  return out
end

-- Dry run: every row through the setters and the request rules, and its names against the account.
local function check_names(fields, known)
  for _, field in ipairs{ "interests", "autoresponders" } do
    for _, name in ipairs(type(fields[field]) == "table" and fields[field] or {}) do
      if type(name) == "string" and not tonumber(name) and not known[field][name:lower()] then
        return ("%s: %s is not one of the account's %s"):format(field, name,
          field == "interests" and "interests" or "nurtures")
      end
    end
  end
end

-- The format, when not given: from the file's extension.
local function choose_format(args)
  if not args.format then
    args.format = (args.file:lower():match("%.jsonl$") or args.file:lower():match("%.ndjson$")) and "jsonl" or "csv"
  end
end

-- How many data rows the file holds, for the progress bar; nil for stdin (it can be read only once).
local function count_rows(args)
  if args.file == "-" then return nil end
  if args.format == "jsonl" then
    local total = 0
    for line in io.lines(args.file) do if line:find("%S") then total = total + 1 end end
    return total
  end
  return args.format == "csv" and (csv.count(args.file) or 1) - 1 or nil
end

-- Nothing can run without the server: say so once instead of failing every row.
-- A dry run reads the account's names instead (the rows are checked against them): returns them.
local function check_server(client, args)
  if args.dry_run then
    local interests, ierr = client:interests()
    if not interests then cli.stop(2, "cannot read the account's interests: %s", tostring(ierr)) end
    local nurtures, nerr = client:autoresponders()
    if not nurtures then cli.stop(2, "cannot read the account's nurtures: %s", tostring(nerr)) end
    return { interests = lower_set(interests), autoresponders = lower_set(nurtures) }
  end
  local settings, perr = client:ping()
  if not settings then cli.stop(2, "cannot reach the API: %s", tostring(perr)) end
  return nil
end

-- A journal that exists already means this run resumes an earlier one.
local function journal_exists(args)
  local resuming = args.journal and io.open(args.journal, "r")
  if resuming then resuming:close() end
  return resuming
end

-- A row that cannot be saved: counted, and written to the errors file.
local function reject(job, n, raw, reason)
  job.bad = job.bad + 1
  if job.errors_out then job.errors_out.add(n, raw, reason) end
end

-- Why a row would fail, or nil: the setters, the request rules, and its names against the account.
local function dry_problem(job, Contact, op_opts, fields)
  local client = job.client
  local built, c = pcall(client.contact, client, fields)
  if not built then return require("envoke.errors").reason(c) end
  local planned, plan, _, perr = pcall(Contact.plan, c, job.args.op, op_opts)
  if not planned then return require("envoke.errors").reason(plan) end
  return not plan and perr and perr.message or check_names(fields, job.known)
end

-- Dry run: every row checked, nothing sent; returns the summary.
local function check_rows(job)
  local Contact = require "envoke.contact"
  local args, state = job.args, job.state
  local op_opts = args.op ~= "insert" and { keyfield = args.keyfield } or nil
  local ok_rows = 0
  while not state.interrupted do
    local more, fields, problem, raw = job.rows()
    if not more then break end
    job.row = job.row + 1
    problem = problem or dry_problem(job, Contact, op_opts, fields)
    if problem then reject(job, job.row, raw, problem) else ok_rows = ok_rows + 1 end
    job.show:update(job.row, job.bad)
    interrupt.point(state)
  end
  return { succeeded = ok_rows, failed = 0, skipped = 0, reconciled = 0 }
end

-- The bulk engine's items: the rows' fields, each remembered in info (item -> { row, raw })
-- for the errors file; a row that could not be read is rejected on the way.
local function items(job, info)
  local state, rows = job.state, job.rows
  return function()
    while not state.interrupted do
      local more, fields, problem, raw = rows()
      if not more then return nil end
      job.row = job.row + 1
      if problem then
        reject(job, job.row, raw, problem)
      else
        info[fields] = { job.row, raw }
        return fields
      end
    end
  end
end

-- A save that failed: counted, and its row written to the errors file.
local function on_result(job, info)
  return function(_, r, item)
    if not r.ok then
      job.failed = job.failed + 1
      local where = info[item]
      local reason = tostring(r.err):gsub("^envoke: ", "")
      if r.applied == "unknown" then reason = reason .. " (it may have been applied)" end
      if job.errors_out and where then job.errors_out.add(where[1], where[2], reason) end
    end
  end
end

-- The bulk save of every row, with progress and the journal; returns the summary.
local function save_rows(job, concurrency)
  local args, client = job.args, job.client
  local info = setmetatable({}, { __mode = "k" }) -- gone with the item
  local results, sum = client[args.op .. "_all"](client, items(job, info), {
    concurrency = concurrency, keyfield = args.op ~= "insert" and args.keyfield or nil,
    results = false, journal = args.journal,
    on_result = on_result(job, info),
    on_progress = function(done)
      job.show:update(done + job.bad, job.failed + job.bad)
      interrupt.point(job.state)
    end,
  })
  if not results then cli.stop(2, "%s", tostring(sum)) end
  return sum
end

-- The summary line, and the exit status: 130 when interrupted, 1 when a row failed.
local function report(args, state, summary, bad)
  local failures = (summary.failed or 0) + bad
  local verb = args.dry_run and "checked" or "imported"
  local extra = ""
  if (summary.reconciled or 0) > 0 then extra = ("; %d reconciled"):format(summary.reconciled) end
  if args.dry_run then extra = extra .. " (dry run: nothing was sent)" end
  io.stderr:write(("%s: %d ok, %d failed, %d skipped%s\n"):format(verb, summary.succeeded, failures,
    summary.skipped or 0, extra))
  if state.interrupted then
    io.stderr:write("envoke: interrupted", args.journal and (": rerun with --journal " .. args.journal
      .. " to go on") or "", "\n")
    return 130
  end
  return failures > 0 and 1 or 0
end

--- Runs the import; returns the exit status.
-- @local
function import.run(args, state)
  choose_format(args)
  local concurrency = cli.number(args, "concurrency", 1, 256)
  local rate = cli.number(args, "rate_limit", 0.001, 1e6)
  local interval = cli.number(args, "progress_interval", 0.01, 3600)
  local f = open_input(args)
  local rows, err_header, width = source(args, f)
  local total = count_rows(args)
  local client = cli.client(args, { rate_limit = rate, on_overlong = args.on_overlong })
  local known = check_server(client, args)
  local errors_out = errors_file(args, err_header, width, journal_exists(args))
  local show = progress.new{ tty = progress.stderr_is_tty(), total = total, interval = interval }
  local job = { args = args, state = state, rows = rows, client = client, known = known,
                errors_out = errors_out, show = show, row = 0, bad = 0, failed = 0 }
  local summary
  if args.dry_run then summary = check_rows(job) else summary = save_rows(job, concurrency) end
  if f ~= io.stdin then f:close() end
  if errors_out then errors_out.close() end
  client:close()
  show:finish()
  return report(args, state, summary, job.bad)
end

return import
