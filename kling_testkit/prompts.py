"""Prompt text: the normalisation that content checks run on, and blocked-term matching.

The mock's content policy and users' own validators share these, so a term blocked in one is
blocked in the other whatever its case, width or Unicode form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from kling_testkit.errors import KlingError
from kling_testkit.spec.document import schema


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
    terms = tuple(terms)
    if not terms:
        return None  # nothing to look for: the prompt need not be normalised
    key = match_key(text)
    for term in terms:
        if match_key(term) and match_key(term) in key:
            return term
    return None


class PromptError(KlingError, ValueError):
    """Raised by validate_prompt when a prompt cannot be sent; ``reason`` names the rule."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def validate_prompt(
    text: object,
    *,
    min_length: int = 1,
    max_length: int | None = None,
    blocked_terms: Iterable[str] = (),
) -> str:
    """Return the normalised prompt, or raise PromptError saying what is wrong.

    Rules: a string; after :func:`normalize_prompt`, at least ``min_length`` and at most
    ``max_length`` characters (default and ceiling: the contract's limit); only characters the
    API accepts; none of ``blocked_terms`` in any case, width or Unicode form.
    """
    limit = _contract_limit()
    max_length = limit if max_length is None else max_length
    if not 1 <= min_length <= max_length <= limit:
        raise ValueError(f"need 1 <= min_length <= max_length <= {limit}")
    if not isinstance(text, str):
        raise PromptError("type", f"a prompt must be a string, not {type(text).__name__}")
    prompt = normalize_prompt(text)
    if not prompt:
        raise PromptError("empty", "the prompt is empty")
    if len(prompt) < min_length:
        raise PromptError(
            "too_short",
            f"the prompt has {len(prompt)} characters; at least {min_length} are needed",
        )
    if len(prompt) > max_length:
        raise PromptError(
            "too_long", f"the prompt has {len(prompt)} characters; at most {max_length} are allowed"
        )
    if not re.search(_contract_pattern(), prompt):
        raise PromptError(
            "characters", "the prompt holds control characters or unpaired surrogates"
        )
    term = blocked_term(prompt, blocked_terms)
    if term is not None:
        raise PromptError("blocked", f"the prompt contains the blocked term {term!r}")
    return prompt


def _contract_limit() -> int:
    return int(schema("Prompt")["maxLength"])


def _contract_pattern() -> str:
    return str(schema("Prompt")["pattern"])
