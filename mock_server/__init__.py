"""A stateful mock of the Kling AI API (legacy ``/v1`` design)."""

from mock_server.app import create_app
from mock_server.backend import Backend
from mock_server.clock import Clock
from mock_server.config import Account, MockConfig
from mock_server.errors import ApiError, ConfigError, MockError

__all__ = [
    "Account",
    "ApiError",
    "Backend",
    "Clock",
    "ConfigError",
    "MockConfig",
    "MockError",
    "create_app",
]
