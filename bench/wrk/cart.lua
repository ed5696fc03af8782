-- validate / redeem: a one-line cart for a code drawn from BENCH_CODES_FILE (or BENCH_CODE),
-- by a random user. BENCH_PATH picks the endpoint.
local c = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
setup = c.setup
done = c.done
local codes
local path = os.getenv("BENCH_PATH")
init = function()
  c.seed()
  codes = c.lines(os.getenv("BENCH_CODES_FILE"))
  if #codes == 0 then codes = {os.getenv("BENCH_CODE")} end
end
request = function()
  local body = string.format(
    '{"code": "%s", "user_id": "u-%d", "lines": [{"line_id": "1", "kind": "course_session", ' ..
    '"id": "cs-9", "unit_price": "120.00", "quantity": 1}]}',
    codes[math.random(#codes)], math.random(1, 100000000))
  return wrk.format("POST", path,
    {["Authorization"] = c.key, ["Content-Type"] = "application/json"}, body)
end
