-- luacheck settings for the whole repository.
std = "max"
files["spec"] = { std = "+busted" }
files["examples/sandbox_spec.lua"] = { std = "+busted" }
