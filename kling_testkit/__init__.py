"""Test and simulate apps that call the Kling AI API."""

from kling_testkit.client import KlingClient
from kling_testkit.codes import ErrorCode
from kling_testkit.credentials import Credentials
from kling_testkit.errors import ApiError, KlingError

__all__ = ["ApiError", "Credentials", "ErrorCode", "KlingClient", "KlingError"]
