"""A reusable property suite for a prompt validator: subclass it in your own tests.

    from kling_testkit.properties import PromptValidatorProperties

    class TestMyValidator(PromptValidatorProperties):
        validator = staticmethod(my_app.validate_prompt)   # returns the prompt to send
        error = my_app.BadPrompt                           # the one exception it may raise
        blocked_terms = ("gore",)

Each property is a Hypothesis test; a failure prints the smallest counterexample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kling_testkit.prompts import PromptError, match_key, normalize_prompt, validate_prompt
from kling_testkit.spec import ContractViolation, check_request, schema

_LIMIT = int(schema("Prompt")["maxLength"])
# Every subclass runs the same inherited test functions with its own validator: that is the
# point of a reusable suite, so Hypothesis' "differing executors" check does not apply.
_SHARED = [HealthCheck.differing_executors]
_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")


def _fullwidth(text: str) -> str:
    """ASCII letters and digits as their fullwidth forms (NFKC maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def _disguised(draw: st.DrawFn, term: str) -> str:
    """``term`` in another case, width or with invisible characters, inside other text."""
    shaped = "".join(draw(st.sampled_from([c.lower(), c.upper()])) for c in term)
    if draw(st.booleans()):
        shaped = _fullwidth(shaped)
    if len(shaped) > 1 and draw(st.booleans()):
        cut = draw(st.integers(1, len(shaped) - 1))
        shaped = shaped[:cut] + draw(st.sampled_from(_ZERO_WIDTH)) + shaped[cut:]
    before = draw(st.text(max_size=20))
    after = draw(st.text(max_size=20))
    return f"{before} {shaped} {after}"


class PromptValidatorProperties:
    """Properties every prompt validator of an app calling the Kling API should have."""

    validator: ClassVar[Callable[[str], Any]] = staticmethod(validate_prompt)
    """Returns the prompt to send (maybe cleaned) or raises ``error``."""
    error: ClassVar[type[BaseException]] = PromptError
    normalizer: ClassVar[Callable[[str], str] | None] = staticmethod(normalize_prompt)
    blocked_terms: ClassVar[Sequence[str]] = ()

    def _accepts(self, text: str) -> Any:
        try:
            return type(self).validator(text)
        except self.error:
            return None

    @settings(max_examples=200, deadline=None, suppress_health_check=_SHARED)
    @given(st.text(max_size=300) | st.binary(max_size=50).map(lambda b: b.decode("latin-1")))
    def test_only_the_documented_exception_escapes(self, text: str) -> None:
        self._accepts(text)

    @settings(max_examples=200, deadline=None, suppress_health_check=_SHARED)
    @given(st.text(max_size=300))
    def test_normalisation_is_idempotent(self, text: str) -> None:
        normalize = type(self).normalizer
        if normalize is not None:
            once = normalize(text)
            assert normalize(once) == once

    @settings(max_examples=200, deadline=None, suppress_health_check=_SHARED)
    @given(st.text(max_size=300))
    def test_what_the_validator_accepts_the_api_accepts(self, text: str) -> None:
        accepted = self._accepts(text)
        if accepted is None:
            return
        sent = accepted if isinstance(accepted, str) else text
        try:
            check_request("text2video", {"prompt": sent})
        except ContractViolation as exc:  # pragma: no cover - reported by Hypothesis
            raise AssertionError(f"accepted {sent!r} but the API refuses it: {exc}") from None

    @settings(max_examples=50, deadline=None, suppress_health_check=_SHARED)
    @given(
        st.integers(_LIMIT + 1, _LIMIT + 500), st.characters(codec="utf-8", categories=["L", "N"])
    )
    def test_over_long_prompts_are_refused(self, length: int, char: str) -> None:
        assert self._accepts(char * length) is None, f"accepted a prompt of {length} characters"

    @settings(max_examples=200, deadline=None, suppress_health_check=_SHARED)
    @given(st.data())
    def test_blocked_terms_are_refused_in_any_case_or_form(self, data: st.DataObject) -> None:
        if not self.blocked_terms:
            return
        term = data.draw(st.sampled_from(list(self.blocked_terms)))
        text = data.draw(_disguised(term))
        assert match_key(term) in match_key(text)  # the disguise keeps the term
        assert self._accepts(text) is None, f"accepted {text!r}, which contains {term!r}"
