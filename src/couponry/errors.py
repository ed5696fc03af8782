"""The domain error hierarchy.

Each concrete class carries a stable public `code` (part of the API: never derived from the
class name). HTTP statuses and EduBrite numeric codes live only in `web/errors.py`, keyed by the
base classes below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# What no reply may carry, whatever a caller sent: C0 and C1 controls other than tab, LF and
# CR, lone surrogates (JSON and UTF-8 encoders fail on them) and U+FFFE/U+FFFF (XML forbids
# them). Refusals often echo input (an unknown key, a bad value), so they pass through here.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
MAX_ECHO = 2_000


def printable(text: str) -> str:
    """Text with every unsafe character shown as `\\uXXXX`: encodable as UTF-8, JSON and XML."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def visible(text: str) -> str:
    """Caller-supplied text made safe to echo in any reply or log: `printable`, and cut to a
    bounded length."""
    if len(text) > MAX_ECHO:
        text = text[:MAX_ECHO] + "..."
    return printable(text)


@dataclass(frozen=True)
class FieldProblem:
    """One offending field and why; both may echo input, so both are made `visible`."""

    field: str
    message: str
    # True when the field was required and not given (EduBrite reports these as 1001).
    missing: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "field", visible(self.field))
        object.__setattr__(self, "message", visible(self.message))


class CouponryError(Exception):
    """Base of every error a caller may see. `code` is snake_case and stable."""

    code = "internal_error"
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, details: Iterable[FieldProblem] = ()) -> None:
        self.message = visible(message or self.default_message)
        self.details = list(details)
        super().__init__(self.message)


# --- the kinds (each maps to one status in web/errors.py) -----------------------------------


class BadRequest(CouponryError):
    """The request itself is malformed (bad JSON, bad query parameter)."""

    code = "bad_request"


class InvalidInput(CouponryError):
    """A well-formed request whose content the rules refuse."""

    code = "validation_failed"
    default_message = "Some fields are invalid."


class Rejected(CouponryError):
    """A valid request refused by a business rule (redemption refusals)."""

    code = "rejected"


class NotFound(CouponryError):
    code = "not_found"
    default_message = "Not found."


class Conflict(CouponryError):
    code = "conflict"


class Unauthorized(CouponryError):
    code = "unauthorized"
    default_message = "A valid API key is required."


class Forbidden(CouponryError):
    code = "forbidden"
    default_message = "This key may not do that."


class Unavailable(CouponryError):
    """The database cannot be reached for now; the caller should retry."""

    code = "unavailable"
    default_message = "The service is briefly unavailable; retry in a moment."


class PayloadTooLarge(CouponryError):
    code = "payload_too_large"
    default_message = "The request body is larger than 1 MiB."


class UnsupportedMediaType(CouponryError):
    code = "unsupported_media_type"


# --- concrete errors ------------------------------------------------------------------------


class MalformedJson(BadRequest):
    code = "malformed_json"


class InvalidQuery(BadRequest):
    code = "invalid_query"


class InvalidFields(BadRequest):
    code = "invalid_fields"


class InvalidStartKey(BadRequest):
    code = "invalid_exclusive_start_key"


class CodeSpaceTooSmallError(InvalidInput):
    code = "code_space_too_small"

    def __init__(self, count: int, space: int) -> None:
        message = (
            f"count {count} is more than a quarter of the {space} codes the pattern can make; "
            "lengthen the pattern or widen the charset"
        )
        super().__init__(message, [FieldProblem("count", message)])


class UnknownField(InvalidInput):
    code = "unknown_field"


class IdNotAllowed(InvalidInput):
    code = "id_not_allowed"
    default_message = "A new coupon's id is set by the server; remove `id` from the body."


class IdMismatch(InvalidInput):
    code = "id_mismatch"


class InvalidPatch(InvalidInput):
    code = "invalid_patch"


class InvalidGroupPath(InvalidInput):
    code = "invalid_group_path"

    def __init__(self, message: str, position: int, field: str = "path") -> None:
        self.position = position
        super().__init__(message, [FieldProblem(field, message)])


class BatchTooLarge(InvalidInput):
    code = "invalid_batch"


class CouponNotFound(NotFound):
    code = "coupon_not_found"
    default_message = "No such coupon."


class GroupNotFound(NotFound):
    code = "group_not_found"
    default_message = "No such group."


class MemberNotFound(NotFound):
    code = "member_not_found"
    default_message = "That user is not a member of this group."


class CodeNotFound(NotFound):
    code = "code_not_found"
    default_message = "This coupon has no such code."


class JobNotFound(NotFound):
    code = "job_not_found"
    default_message = "No such job."


class TenantNotFound(NotFound):
    code = "tenant_not_found"
    default_message = "No such tenant."


class KeyNotFound(NotFound):
    code = "key_not_found"
    default_message = "No such API key."


class GroupPathNoMatch(NotFound):
    code = "group_path_no_match"


class GroupPathAmbiguous(Conflict):
    code = "group_path_ambiguous"

    def __init__(self, message: str, count: int, field: str = "path") -> None:
        self.count = count
        super().__init__(message, [FieldProblem(field, message)])


class CodeTaken(Conflict):
    code = "code_taken"


class GroupCodeTaken(Conflict):
    code = "group_code_taken"


class TenantExists(Conflict):
    code = "tenant_exists"


class VersionConflict(Conflict):
    code = "version_conflict"


class CouponChanged(Exception):
    """A coupon was changed (its sys_version moved) between a redemption's read of it and its
    claim: the claim took nothing, and the redemption is read and decided again."""


class CouponLocked(Conflict):
    code = "coupon_locked"
    default_message = "The coupon is locked (sys_locked); unlock it first."


class UsageLimitBelowUsed(Conflict):
    code = "usage_limit_below_used"


class CodeFrozen(Conflict):
    code = "code_frozen"
    default_message = "The code of a coupon that has been redeemed cannot change."


class PatchTestFailed(Conflict):
    code = "patch_test_failed"


class GroupInUse(Conflict):
    code = "group_in_use"


class BadParameter(InvalidInput):
    """An EduBrite form parameter refused by the adapter: its details name the parameter."""

    code = "invalid_parameter"


class UnknownDispatch(BadRequest):
    code = "unknown_dispatch"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class RoleForbidden(Forbidden):
    code = "insufficient_role"


class SessionEnded(Unauthorized):
    """A console session that is unknown, expired, signed out, or whose key was revoked."""

    code = "session_ended"
    default_message = "Your session has ended: sign in again."


class CsrfRefused(Forbidden):
    """A console form without its session's CSRF token (SPEC 12)."""

    code = "csrf_refused"
    default_message = (
        "This form was refused: its security token is missing or out of date. "
        "Go back, reload the page and try again."
    )


class WrongTenant(Forbidden):
    code = "wrong_tenant"
    default_message = "This key belongs to another tenant."


# --- validation and redemption (SPEC 6.3, 6.4) ----------------------------------------------


class RedemptionNotFound(NotFound):
    code = "redemption_not_found"
    default_message = "No such redemption."


class CheckoutNotFound(NotFound):
    code = "checkout_not_found"
    default_message = "No redemption has this checkout_id."


class CouponInactive(Rejected):
    code = "coupon_inactive"


class CouponNotStarted(Rejected):
    code = "coupon_not_started"


class CouponExpired(Rejected):
    code = "coupon_expired"


class NotInAuthorizedGroup(Rejected):
    code = "not_in_authorized_group"


class MembershipStatusMismatch(Rejected):
    code = "membership_status_mismatch"


class CouponNotApplicable(Rejected):
    code = "coupon_not_applicable"


class NotCombinable(Rejected):
    """A code of a multi-code cart that cannot combine with one applied before it."""

    code = "not_combinable"


class UsageLimitReached(Conflict):
    code = "usage_limit_reached"
    default_message = "This coupon has been used as often as it may be."


class UserLimitReached(Conflict):
    code = "user_limit_reached"
    default_message = "This user has used this coupon as often as they may."


class CreditExhausted(Conflict):
    code = "credit_exhausted"
    default_message = "This coupon's credit is spent."


class CodeUsedUp(Conflict):
    code = "code_used_up"
    default_message = "This code has been used as often as it may be."


class BudgetExhausted(Conflict):
    code = "budget_exhausted"
    default_message = "This coupon's budget is spent."


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was used with another request body."


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    default_message = "A request with this Idempotency-Key is still running; retry shortly."


class InvalidRedemptionState(Conflict):
    code = "invalid_redemption_state"


class HoldExpired(Conflict):
    code = "hold_expired"
    default_message = "This hold expired before it was confirmed; its claims were given back."


class ApproverNotAllowed(Forbidden):
    code = "approver_not_allowed"
    default_message = "The approver must be a tenant admin or an admin of the authorized group."


# The refusals of SPEC 6.3, by code, in the order they are checked.
REFUSALS: dict[str, type[CouponryError]] = {
    cls.code: cls
    for cls in (
        CouponNotFound,
        CouponInactive,
        CouponNotStarted,
        CouponExpired,
        NotInAuthorizedGroup,
        MembershipStatusMismatch,
        CouponNotApplicable,
        UsageLimitReached,
        CodeUsedUp,
        UserLimitReached,
        CreditExhausted,
        BudgetExhausted,
        NotCombinable,
    )
}


def error_document(
    code: str, message: str, details: Iterable[FieldProblem] = ()
) -> dict[str, object]:
    """An error as a JSON document: its code, message, and each problem's field and message."""
    return {
        "code": code,
        "message": message,
        "details": [{"field": d.field, "message": d.message} for d in details],
    }


def all_error_classes() -> list[type[CouponryError]]:
    """Every error class, for the uniqueness test and the status table."""
    seen: list[type[CouponryError]] = []
    stack: list[type[CouponryError]] = [CouponryError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
