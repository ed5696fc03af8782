"""couponry: a multi-tenant coupon service."""
