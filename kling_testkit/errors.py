"""Errors a client of the Kling API can meet. One root; each subclass says who raises it."""

from __future__ import annotations

from kling_testkit.codes import ErrorCode


class KlingError(Exception):
    """Root of every error raised by kling_testkit."""


class CredentialsError(KlingError):
    """Keys are missing or unusable: none found, half an access key/secret key pair, or no API
    key for a 2026-design endpoint (raised before anything is sent)."""


class ApiError(KlingError):
    """Raised by the client for an error envelope: carries code, HTTP status and request id."""

    def __init__(
        self,
        code: int,
        message: str,
        http_status: int,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code} ({http_status}): {message} [request_id={request_id}]")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.retry_after = retry_after


class AuthError(ApiError):
    """Codes 1000-1004: the token or key was missing, wrong or expired."""


class AccountError(ApiError):
    """Codes 1100-1103: the account cannot run this (arrears, no units, no permission)."""


class InvalidRequestError(ApiError):
    """Codes 1200-1203: a parameter, method or resource was wrong."""


class PolicyError(ApiError):
    """Codes 1300, 1301, 1304: the request was blocked by a platform or content policy."""


class RateLimitError(ApiError):
    """Codes 1302 and 1303: too many requests or too many running tasks."""


class ServerError(ApiError):
    """Codes 5000-5002, or any 5xx: the service failed; retrying later may work."""


class ProtocolError(KlingError):
    """The answer was not a Kling envelope (not JSON, or keys missing)."""


class TransportError(KlingError):
    """The exchange itself failed: connection refused or reset, a timeout, a body cut short.

    The ``requests`` exception that caused it is chained as ``__cause__``.
    """


class TaskFailed(KlingError):
    """Raised by ``wait`` when the task ends ``failed``; ``task`` is its last task object."""

    def __init__(self, task: dict[str, object]) -> None:
        task_id = task.get("task_id", task.get("id"))  # the legacy or the 2026 task object
        reason = task.get("task_status_msg", task.get("message"))
        super().__init__(f"task {task_id} failed: {reason}")
        self.task = task


class ResultExpired(KlingError):
    """Raised by ``download`` when a result URL has expired (or the server says it has)."""


class WaitTimeout(KlingError):
    """Raised by ``wait`` when the deadline passes before the task ends."""


def error_class(code: int, http_status: int) -> type[ApiError]:
    """The :class:`ApiError` subclass for a business code (falling back on the HTTP status)."""
    if code in (ErrorCode.RATE_LIMITED, ErrorCode.CONCURRENCY_LIMITED):
        return RateLimitError
    if 1000 <= code < 1100:
        return AuthError
    if 1100 <= code < 1200:
        return AccountError
    if 1200 <= code < 1300:
        return InvalidRequestError
    if 1300 <= code < 1400:
        return PolicyError
    if code >= 5000 or http_status >= 500:
        return ServerError
    return ApiError
