-- LÖVE 11.4 with no display: no window and only the modules a headless game
-- needs (event, timer, system, data, math); the rest would want a screen or
-- a sound card.
-- luacheck: globals love
function love.conf(t)
  t.identity = "envoke-host-spec"
  t.window = nil
  for _, m in ipairs{ "audio", "font", "graphics", "image", "joystick", "keyboard", "mouse",
                      "physics", "sound", "thread", "touch", "video", "window" } do
    t.modules[m] = false
  end
end
