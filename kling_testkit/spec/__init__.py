"""The API contract: the OpenAPI document and the checks built on it."""

from kling_testkit.spec.document import (
    Family,
    defaults,
    families,
    field,
    openapi,
    operation_path,
    parameter,
    schema,
)
from kling_testkit.spec.rules import check_body, check_image, check_request, image_size
from kling_testkit.spec.statuses import (
    FAILED,
    PROCESSING,
    SUBMITTED,
    SUCCEED,
    SUCCEEDED,
    TERMINAL,
)
from kling_testkit.spec.validation import ContractViolation, parse_query, validate

__all__ = [
    "FAILED",
    "PROCESSING",
    "SUBMITTED",
    "SUCCEED",
    "SUCCEEDED",
    "TERMINAL",
    "ContractViolation",
    "Family",
    "check_body",
    "check_image",
    "check_request",
    "defaults",
    "families",
    "field",
    "image_size",
    "openapi",
    "operation_path",
    "parameter",
    "parse_query",
    "schema",
    "validate",
]
