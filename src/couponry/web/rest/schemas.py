"""Pydantic models that document the REST dialect in /openapi.json.

Requests are checked by the domain (one set of rules for both dialects, with errors naming
every field); these models describe the same shapes for readers and generated clients.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from couponry.domain.coupons import PRIORITY_MAX, PRIORITY_MIN

Money = float | str
Instant = str


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="stable snake_case code")
    message: str
    details: list[ErrorDetail]


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class PackageDiscountInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["amount", "percentage"]
    amount: Money
    package_ids: list[str] | None = None
    type_ids: list[str] | None = None


class ChapterDiscountInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["amount", "percentage"]
    amount: Money
    maximum_number_of_chapters: int | None = None
    chapter_type_ids: list[str] | None = None
    chapter_ids: list[str] | None = None


class SectionDiscountInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["amount", "percentage"]
    amount: Money
    maximum_number_of_sections: int | None = None
    section_type_ids: list[str] | None = None
    section_ids: list[str] | None = None


class AddOnDiscountInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["amount", "percentage"]
    amount: Money
    add_on_ids: list[str] | None = None
    add_on_type_ids: list[str] | None = None


class CustomFieldValue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    custom_field_id: str
    string_value: str | None = None
    numeric_value: float | None = None
    boolean_value: bool | None = None
    file_url_value: str | None = None
    list_value: list[str] | None = None
    table_value: list[dict[str, Any]] | None = None


class _CouponFields(BaseModel):
    name: str | None = Field(None, description="1-200 chars; defaults to the code")
    code: str | None = Field(None, description="3-64 of [A-Za-z0-9_-]; generated when omitted")
    is_active: bool | None = True
    comment: str | None = None
    custom_field_values: list[CustomFieldValue] | None = None
    code_generation_html: str | None = None
    sys_external_id: str | None = None
    sys_locked: bool | None = False
    coupon_type: Literal["USAGE", "AMOUNT", "PERCENT", "TOTAL_AMOUNT"] | None = None
    entity_type: Literal["SITE", "PROGRAM_SESSION", "COURSE_SESSION", "EVENT", "GROUP"] | None = (
        None
    )
    entity_id: str | None = Field(None, description="for GROUP: a group id or a group path")
    value_amount: Money | None = None
    value_percent: Money | None = None
    apply_to_membership_packages: bool | None = False
    membership_package_discount_info: PackageDiscountInfo | None = None
    apply_to_chapter_dues: bool | None = False
    chapter_dues_discount_info: ChapterDiscountInfo | None = None
    apply_to_section_dues: bool | None = False
    section_dues_discount_info: SectionDiscountInfo | None = None
    apply_to_add_on_products: bool | None = False
    add_on_products_discount_info: AddOnDiscountInfo | None = None
    discount_method: Literal["discount line item", "inline discount"] | None = "inline discount"
    discount_product_id: str | None = None
    maximum_discount: Money | None = None
    starts_at: Instant | None = None
    expires_at: Instant | None = None
    usage_limit: int | None = None
    max_uses_per_user: int | None = None
    applies_to: Literal["new members", "renewing members", "all members"] | None = "all members"
    authorized_group_id: str | None = Field(None, description="a group id or a group path")
    set_membership_expiration: bool | None = False
    add_user_to_coupons_group: bool | None = False
    require_approval: bool | None = False
    preview_access_only: bool | None = False
    budget_amount: Money | None = Field(
        None, description="what the coupon may give in all (SPEC 10); > 0"
    )
    stacking: Literal["exclusive", "combinable"] = Field(
        "exclusive",
        description="several codes in one cart (SPEC 11.2): exclusive combines with nothing, "
        "combinable with other combinable coupons",
    )
    priority: int = Field(
        0,
        ge=PRIORITY_MIN,
        le=PRIORITY_MAX,
        description="several codes in one cart apply in descending priority, ties in cart order",
    )


class CouponWrite(_CouponFields):
    """A coupon as sent on create and PUT (read-only fields are ignored on PUT)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, description="refused on create; must equal the path's on PUT")
    sys_version: int | None = Field(None, description="PUT precondition, like If-Match")


class CouponRead(BaseModel):
    """A coupon as the service shows it."""

    id: str
    name: str
    code: str
    is_active: bool
    comment: str | None
    custom_field_values: list[dict[str, Any]] | None
    code_generation_html: str | None
    sys_external_id: str | None
    sys_locked: bool
    coupon_type: str | None
    entity_type: str | None
    entity_id: str | None
    value_amount: float | None
    value_percent: float | None
    apply_to_membership_packages: bool
    membership_package_discount_info: dict[str, Any] | None
    apply_to_chapter_dues: bool
    chapter_dues_discount_info: dict[str, Any] | None
    apply_to_section_dues: bool
    section_dues_discount_info: dict[str, Any] | None
    apply_to_add_on_products: bool
    add_on_products_discount_info: dict[str, Any] | None
    discount_method: str
    discount_product_id: str | None
    maximum_discount: float | None
    starts_at: Instant | None
    expires_at: Instant | None
    usage_limit: int | None
    max_uses_per_user: int | None
    applies_to: str
    authorized_group_id: str | None
    set_membership_expiration: bool
    add_user_to_coupons_group: bool
    require_approval: bool
    preview_access_only: bool
    budget_amount: float | None
    stacking: Literal["exclusive", "combinable"]
    priority: int
    times_used: int
    remaining_amount: float | None
    budget_remaining: float | None
    sys_version: int
    sys_created_at: Instant
    sys_last_modified_at: Instant
    sys_created_by_id: str | None
    sys_last_modified_by_id: str | None
    sys_deleted_by_id: str | None


class CouponPartial(BaseModel):
    """A scan or get with `fields`: `id` plus the fields asked for."""

    model_config = ConfigDict(extra="allow")
    id: str


class PatchOperation(BaseModel):
    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str
    value: Any = None
    from_: str | None = Field(None, alias="from")


class BatchOperation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operation: Literal["create", "update", "patch", "delete"]
    id: str | None = None
    object: CouponWrite | None = None
    patch_directives: list[PatchOperation] | None = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operations: list[BatchOperation] = Field(min_length=1, max_length=100)


class BatchResultItem(BaseModel):
    operation: str | None
    id: str | None
    outcome: Literal["success", "error"]
    error_code: str | None
    error_message: str | None
    object: dict[str, Any] | None


class BatchResponse(BaseModel):
    success_count: int
    error_count: int
    results: list[BatchResultItem]


class GroupWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    code: str | None = None
    parent_id: str | None = None
    sys_version: int | None = None


class GroupRead(BaseModel):
    id: str
    parent_id: str | None
    name: str
    code: str | None
    sys_version: int
    sys_created_at: Instant
    sys_last_modified_at: Instant


class MemberWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["member", "admin"] = "member"
    expires_at: Instant | None = None


class MemberRead(BaseModel):
    user_id: str
    role: str
    expires_at: Instant | None


REQUEST_MODELS: list[type[BaseModel]] = [CouponWrite, BatchRequest, GroupWrite, MemberWrite]


def body_doc(model: type[BaseModel], *media: str) -> dict[str, Any]:
    """`openapi_extra` for a body that the route reads itself."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    types = media or ("application/json",)
    return {"requestBody": {"required": True, "content": {m: {"schema": ref} for m in types}}}


def patch_doc() -> dict[str, Any]:
    schema = {"type": "array", "items": {"$ref": "#/components/schemas/PatchOperation"}}
    content = {m: {"schema": schema} for m in ("application/json-patch+json", "application/json")}
    return {"requestBody": {"required": True, "content": content}}


def errors_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorEnvelope, "description": "error"} for s in statuses}
