-- Tables shaped like the hot path: a coupon row with a counter, and a redemption row.
DROP TABLE IF EXISTS bench_redemptions;
DROP TABLE IF EXISTS bench_coupons;
CREATE TABLE bench_coupons (
  id integer PRIMARY KEY,
  code text NOT NULL,
  times_used integer NOT NULL DEFAULT 0,
  usage_limit integer,
  body text NOT NULL
);
CREATE TABLE bench_redemptions (
  id bigserial PRIMARY KEY,
  coupon_id integer NOT NULL,
  user_id text NOT NULL,
  discount bigint NOT NULL,
  created_at timestamptz NOT NULL
);
INSERT INTO bench_coupons (id, code, usage_limit, body)
SELECT g, 'C' || g, NULL, repeat('x', 900) FROM generate_series(1, 10000) AS g;
ANALYZE bench_coupons;
