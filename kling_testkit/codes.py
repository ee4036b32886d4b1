"""Kling business error codes and the HTTP status each one travels with.

The table is the documented one (official error-code page); the mock answers with it, clients
classify with it, the contract suite checks against it.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """A Kling business code; ``http_status`` is the HTTP status it is sent with."""

    SUCCESS = 0
    AUTH_FAILED = 1000
    AUTH_EMPTY = 1001
    AUTH_INVALID = 1002
    AUTH_NOT_YET_VALID = 1003
    AUTH_EXPIRED = 1004
    ACCOUNT_ABNORMAL = 1100
    ACCOUNT_IN_ARREARS = 1101
    RESOURCE_PACK_EXHAUSTED = 1102
    NO_PERMISSION = 1103
    INVALID_PARAMETERS = 1200
    INVALID_VALUE = 1201
    INVALID_METHOD = 1202
    RESOURCE_NOT_FOUND = 1203
    POLICY_BLOCKED = 1300
    CONTENT_POLICY = 1301
    RATE_LIMITED = 1302
    CONCURRENCY_LIMITED = 1303
    IP_WHITELIST = 1304
    SERVER_ERROR = 5000
    UNAVAILABLE = 5001
    SERVER_TIMEOUT = 5002

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]


_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.SUCCESS: 200,
    ErrorCode.AUTH_FAILED: 401,
    ErrorCode.AUTH_EMPTY: 401,
    ErrorCode.AUTH_INVALID: 401,
    ErrorCode.AUTH_NOT_YET_VALID: 401,
    ErrorCode.AUTH_EXPIRED: 401,
    ErrorCode.ACCOUNT_ABNORMAL: 429,
    ErrorCode.ACCOUNT_IN_ARREARS: 429,
    ErrorCode.RESOURCE_PACK_EXHAUSTED: 429,
    ErrorCode.NO_PERMISSION: 403,
    ErrorCode.INVALID_PARAMETERS: 400,
    ErrorCode.INVALID_VALUE: 400,
    ErrorCode.INVALID_METHOD: 404,
    ErrorCode.RESOURCE_NOT_FOUND: 404,
    ErrorCode.POLICY_BLOCKED: 400,
    ErrorCode.CONTENT_POLICY: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CONCURRENCY_LIMITED: 429,
    ErrorCode.IP_WHITELIST: 429,
    ErrorCode.SERVER_ERROR: 500,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.SERVER_TIMEOUT: 504,
}

SUCCESS_MESSAGE = "SUCCEED"
"""The ``message`` of every successful envelope."""
