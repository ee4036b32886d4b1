"""Prompt text: the normalisation that content checks run on, and blocked-term matching.

The mock's content policy and users' own validators share these, so a term blocked in one is
blocked in the other whatever its case, width or Unicode form.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def normalize_prompt(text: str) -> str:
    """NFKC, drop invisible format characters (zero-width spaces and joiners), fold white space.

    Idempotent: ``normalize_prompt(normalize_prompt(t)) == normalize_prompt(t)``.
    """
    folded = unicodedata.normalize("NFKC", text)
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return " ".join(unicodedata.normalize("NFKC", visible).split())


def match_key(text: str) -> str:
    """The form blocked terms are compared in: normalised, then case-folded."""
    return normalize_prompt(text).casefold()


def blocked_term(text: str, terms: Iterable[str]) -> str | None:
    """The first of ``terms`` found in ``text`` (case-insensitive, after normalisation)."""
    key = match_key(text)
    for term in terms:
        if match_key(term) and match_key(term) in key:
            return term
    return None
