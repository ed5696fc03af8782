-- a redemption of two stacked codes in one cart (SPEC 11.2), by a random user.
local c = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
setup = c.setup
done = c.done
local first = os.getenv("BENCH_CODE")
local second = os.getenv("BENCH_CODE_2")
init = function()
  c.seed()
end
request = function()
  local body = string.format(
    '{"codes": ["%s", "%s"], "user_id": "u-%d", "lines": [{"line_id": "1", ' ..
    '"kind": "course_session", "id": "cs-9", "unit_price": "120.00", "quantity": 1}]}',
    first, second, math.random(1, 100000000))
  return wrk.format("POST", "/redemptions/" .. c.tenant,
    {["Authorization"] = c.key, ["Content-Type"] = "application/json"}, body)
end
