"""Schemathesis support: teach it the string formats of the contract it cannot know.

The document declares inline images with the format ``kling-image-base64``; Schemathesis
generates arbitrary strings for a format it does not know, which the mock rightly refuses.
:func:`register` gives it :func:`kling_testkit.strategies.base64_images` instead::

    from kling_testkit.schemathesis_support import register

    register()
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")

On the command line, the hooks module does the same on import::

    SCHEMATHESIS_HOOKS=kling_testkit.schemathesis_hooks schemathesis run URL/openapi.json ...

Schemathesis is imported only when :func:`register` runs; it is not a dependency of the package.
"""

from __future__ import annotations

from kling_testkit.spec.images import BASE64_FORMAT
from kling_testkit.strategies import base64_images

__all__ = ["FORMATS", "register"]

FORMATS = (BASE64_FORMAT,)
"""The custom string formats of the contract that :func:`register` teaches Schemathesis."""


def register() -> None:
    """Register a generator for each custom format of the contract with Schemathesis."""
    import schemathesis

    schemathesis.openapi.format(BASE64_FORMAT, base64_images())
