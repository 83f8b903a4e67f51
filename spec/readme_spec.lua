-- The README's field table is the schema's own, so the docs cannot drift from
-- what the setters check.
local schema = require "envoke.schema"
local shell = require "sandbox.shell"

describe("README", function()
  it("carries the field table made from envoke.schema", function()
    local readme = assert(shell.read_file("README.md"))
    local table_text = readme:match("<!%-%- fields:[^\n]*\n(.-)<!%-%- end of fields %-%->")
    assert.is_string(table_text, "the fields markers are missing from README.md")
    assert.are.equal(schema.markdown(), table_text)
  end)

  it("opens with the two set-up commands", function()
    local readme = assert(shell.read_file("README.md"))
    local first = readme:find("make demo", 1, true)
    assert.truthy(first and first < 600, "make demo is not near the top")
    assert.truthy(readme:find("make check", 1, true) < 600)
  end)
end)
