"""Errors of the mock. Backend code raises them; views turn them into the Kling envelope."""

from __future__ import annotations

from kling_testkit.codes import ErrorCode


class MockError(Exception):
    """Root of every error the mock raises on purpose."""


class ApiError(MockError):
    """An error answered to the client in the Kling envelope (business code + HTTP status)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.status = status  # overrides the code's documented HTTP status (fault rules only)

    @property
    def http_status(self) -> int:
        return self.status or self.code.http_status


class ConfigError(MockError):
    """The mock's configuration is wrong (raised at start and by config changes)."""
