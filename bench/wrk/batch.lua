-- A batch of 100 creates: coupons/s is 100 x requests/s.
local c = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
setup = c.setup
done = c.done
local ops = {}
for i = 1, 100 do
  ops[i] = '{"operation": "create", "object": {"coupon_type": "USAGE", "usage_limit": 5}}'
end
local body = '{"operations": [' .. table.concat(ops, ",") .. ']}'
request = function()
  return wrk.format("POST", "/coupons/" .. c.tenant .. "/batch",
    {["Authorization"] = c.key, ["Content-Type"] = "application/json"}, body)
end
