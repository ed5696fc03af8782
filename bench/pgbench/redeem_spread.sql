-- One redemption of a coupon drawn from 10,000: a conditional claim and a record.
\set cid random(1, 10000)
\set uid random(1, 100000000)
BEGIN;
UPDATE bench_coupons SET times_used = times_used + 1
  WHERE id = :cid AND (usage_limit IS NULL OR times_used < usage_limit);
INSERT INTO bench_redemptions (coupon_id, user_id, discount, created_at)
  VALUES (:cid, 'u-' || :uid, 300000, now());
END;
