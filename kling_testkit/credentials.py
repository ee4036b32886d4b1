"""Credentials: where a client finds its keys, and the mock's documented development keys."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ACCESS_KEY_VAR = "KLING_ACCESS_KEY"
SECRET_KEY_VAR = "KLING_SECRET_KEY"
BASE_URL_VAR = "KLING_BASE_URL"

# The mock's default development account when the variables above are not set. Public on
# purpose: they open nothing but a local mock. The secret is 32+ bytes, as HS256 wants.
MOCK_ACCESS_KEY = "kling-mock-access-key"
MOCK_SECRET_KEY = "kling-mock-secret-key-for-local-tests-only"
MOCK_API_KEY = "api-key-kling-mock-0123456789abcdef0123456789abcdef0123456"


@dataclass(frozen=True)
class Credentials:
    """An access key and secret key pair (legacy AK/SK auth)."""

    access_key: str
    secret_key: str

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key={self.access_key!r}, secret_key='***')"

    __str__ = __repr__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis' and IPython's pretty printers would otherwise list every field."""
        printer.text(repr(self))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials | None:
        """Read ``KLING_ACCESS_KEY`` and ``KLING_SECRET_KEY``; None when either is missing."""
        env = os.environ if environ is None else environ
        access, secret = env.get(ACCESS_KEY_VAR, "").strip(), env.get(SECRET_KEY_VAR, "").strip()
        if not access or not secret:
            return None
        return cls(access, secret)

    @classmethod
    def mock_default(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """The mock's default account: the environment's keys when set, else the fixed ones."""
        return cls.from_env(environ) or cls(MOCK_ACCESS_KEY, MOCK_SECRET_KEY)
