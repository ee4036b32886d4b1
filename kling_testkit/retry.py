"""When to retry a call and how long to wait: Retry-After first, else backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kling_testkit.errors import ApiError, RateLimitError, ServerError


@dataclass
class RetryPolicy:
    """Bounded retries for 429 rate limits and 5xx errors.

    ``attempts`` counts the first try. Without a ``Retry-After`` the wait is full-jitter
    exponential backoff: a random share of ``backoff * 2**n``, capped at ``max_backoff``.
    """

    attempts: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 600.0
    """A ``Retry-After`` longer than this is not waited for: the error is raised at once."""
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")

    def retryable(self, error: ApiError) -> bool:
        """Rate limits and server errors may pass later (a Retry-After over the cap will not
        pass soon enough); everything else will not."""
        if error.retry_after is not None and error.retry_after > self.max_retry_after:
            return False
        return isinstance(error, (RateLimitError, ServerError))

    def delay(self, error: ApiError | None, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if error is not None and error.retry_after is not None:
            return error.retry_after
        ceiling = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return self.rng.uniform(0, ceiling)


NO_RETRIES = RetryPolicy(attempts=1)
