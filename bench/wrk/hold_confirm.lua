-- hold then confirm (SPEC 11.1): each connection alternates a redemption with hold_seconds and
-- the confirm of the hold it just made; a pair is two requests.
local c = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
setup = c.setup
done = c.done
local held = nil
local code = os.getenv("BENCH_CODE")
init = function()
  c.seed()
end
request = function()
  if held ~= nil then
    local id = held
    held = nil
    return wrk.format("POST", "/redemptions/" .. c.tenant .. "/" .. id .. "/confirm",
      {["Authorization"] = c.key})
  end
  local body = string.format(
    '{"code": "%s", "user_id": "u-%d", "hold_seconds": 900, "lines": [{"line_id": "1", ' ..
    '"kind": "course_session", "id": "cs-9", "unit_price": "120.00", "quantity": 1}]}',
    code, math.random(1, 100000000))
  return wrk.format("POST", "/redemptions/" .. c.tenant,
    {["Authorization"] = c.key, ["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, body)
  if status == 201 then
    held = string.match(body, '"id":"([^"]+)"')
  end
end
