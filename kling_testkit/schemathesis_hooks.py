"""Schemathesis hooks for the CLI: ``SCHEMATHESIS_HOOKS=kling_testkit.schemathesis_hooks``.

Importing this module registers the contract's custom formats (see
:mod:`kling_testkit.schemathesis_support`); nothing else imports it.
"""

from __future__ import annotations

from kling_testkit.schemathesis_support import register

register()
