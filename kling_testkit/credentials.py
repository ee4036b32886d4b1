"""Credentials: where a client finds its keys, and the mock's documented development keys."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kling_testkit.errors import CredentialsError

ACCESS_KEY_VAR = "KLING_ACCESS_KEY"
SECRET_KEY_VAR = "KLING_SECRET_KEY"
API_KEY_VAR = "KLING_API_KEY"
BASE_URL_VAR = "KLING_BASE_URL"

# The mock's default development account when the variables above are not set. Public on
# purpose: they open nothing but a local mock. The secret is 32+ bytes, as HS256 wants.
MOCK_ACCESS_KEY = "kling-mock-access-key"
MOCK_SECRET_KEY = "kling-mock-secret-key-for-local-tests-only"
MOCK_API_KEY = "api-key-kling-mock-0123456789abcdef0123456789abcdef0123456"


@dataclass(frozen=True)
class Credentials:
    """One account's keys: an access key and secret key pair (legacy AK/SK auth, a signed JWT),
    an API key (``Authorization: Bearer <API key>``), or both.

    The ``/v1`` design takes either; the 2026 design (the model in the path, ``/tasks``) takes
    only an API key. ``Credentials("ak", "sk")`` is a pair, ``Credentials(api_key="...")`` a key
    alone. Half a pair, or no key at all, is refused with :class:`CredentialsError`.
    """

    access_key: str = ""
    secret_key: str = ""
    api_key: str = ""

    def __post_init__(self) -> None:
        if bool(self.access_key) != bool(self.secret_key):
            missing = "secret_key" if self.access_key else "access_key"
            raise CredentialsError(f"an access key and secret key go together: {missing} is empty")
        if not (self.access_key or self.api_key):
            raise CredentialsError("no keys: give an access key and secret key, or an api_key")

    @property
    def has_pair(self) -> bool:
        """Whether there is an access key and secret key to sign tokens with."""
        return bool(self.access_key)

    def __repr__(self) -> str:  # never print the secret or the API key
        key = ", api_key='***'" if self.api_key else ""
        return f"Credentials(access_key={self.access_key!r}, secret_key='***'{key})"

    __str__ = __repr__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis' and IPython's pretty printers would otherwise list every field."""
        printer.text(repr(self))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials | None:
        """Read ``KLING_ACCESS_KEY`` and ``KLING_SECRET_KEY`` (a pair counts only when both are
        set) and ``KLING_API_KEY``; None when neither a pair nor an API key is there."""
        env = os.environ if environ is None else environ
        access, secret = env.get(ACCESS_KEY_VAR, "").strip(), env.get(SECRET_KEY_VAR, "").strip()
        api_key = env.get(API_KEY_VAR, "").strip()
        if not (access and secret):
            access = secret = ""
        if not (access or api_key):
            return None
        return cls(access, secret, api_key)

    @classmethod
    def mock_default(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """The mock's default account: the environment's access key and secret key when both are
        set, else the fixed ones; and the mock's API key (``MOCK_API_KEY``, never the
        environment's: the mock's default account always has that one)."""
        found = cls.from_env(environ)
        if found is not None and found.has_pair:
            return cls(found.access_key, found.secret_key, MOCK_API_KEY)
        return cls(MOCK_ACCESS_KEY, MOCK_SECRET_KEY, MOCK_API_KEY)
