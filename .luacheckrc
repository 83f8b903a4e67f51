-- luacheck settings for the whole repository.
std = "max"
files["spec"] = { std = "+busted" }
files["examples/unit_test_spec.lua"] = { std = "+busted" }
