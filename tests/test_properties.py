"""The prompt-validator property suite: it passes for ours and catches a wrong one."""

from __future__ import annotations

import functools

import pytest

from kling_testkit.prompts import PromptError, normalize_prompt, validate_prompt
from kling_testkit.properties import PromptValidatorProperties

pytest_plugins = ["pytester"]

BLOCKED = ("gore", "violence")


class TestOurValidator(PromptValidatorProperties):
    validator = staticmethod(functools.partial(validate_prompt, blocked_terms=BLOCKED))
    blocked_terms = BLOCKED


def test_validator_returns_the_normalised_prompt() -> None:
    assert validate_prompt("  a\u200b  red\tfox ") == "a red fox"
    assert normalize_prompt("ﬁne") == "fine"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        (" \t ", "empty"),
        ("x" * 2501, "too_long"),
        ("a\x00b", "characters"),
        ("so much GORE", "blocked"),
        (None, "type"),
    ],
)
def test_validator_refuses_with_a_reason(text: object, reason: str) -> None:
    with pytest.raises(PromptError) as caught:
        validate_prompt(text, blocked_terms=BLOCKED)
    assert caught.value.reason == reason


def test_minimum_length_is_configurable() -> None:
    with pytest.raises(PromptError, match="at least 10"):
        validate_prompt("a cat", min_length=10)
    with pytest.raises(ValueError, match="max_length"):
        validate_prompt("a cat", max_length=5000)


WRONG_VALIDATOR = """
from kling_testkit.properties import PromptValidatorProperties


class BadPrompt(Exception):
    pass


def naive(text):
    if "gore" in text:  # case-sensitive, no normalisation
        raise BadPrompt(text)
    return text


class TestNaive(PromptValidatorProperties):
    validator = staticmethod(naive)
    error = BadPrompt
    normalizer = None
    blocked_terms = ("gore",)
"""


def test_suite_catches_a_wrong_validator_with_a_readable_counterexample(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_naive=WRONG_VALIDATOR)
    # Schemathesis's plugin (a dev dependency) would blank the values Hypothesis prints.
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:schemathesis", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 2  # blocked terms in disguise; over-long prompts
    # Hypothesis prints the smallest failing input of each property.
    result.stdout.re_match_lines(
        [
            r".*(Falsifying example|Failing test case): test_over_long_prompts_are_refused\(",
            r".*length=2501,",
        ]
    )
    result.stdout.re_match_lines(
        [
            r".*(Falsifying example|Failing test case): "
            r"test_blocked_terms_are_refused_in_any_case_or_form\("
        ]
    )
    result.stdout.fnmatch_lines(["*contains 'gore'*"])
