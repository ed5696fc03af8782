-- EduBrite createCoupon, as the Java client sends it: form POST with the session cookies.
local c = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
setup = c.setup
done = c.done
local headers = {
  ["Cookie"] = os.getenv("BENCH_COOKIE"),
  ["REAL_UNAME"] = "admin|admin@example.org|Bench Admin",
  ["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8",
}
local body = "dispatch=createCoupon&xml=true&couponName=bench&type=USAGE&entityType=SITE" ..
  "&valueCount=999999&expDate=1893456000000"
request = function()
  return wrk.format("POST", "/oltpublish/site/couponService.do", headers, body)
end
