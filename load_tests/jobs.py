"""Job timing: submit to terminal status, and polls per job, as entries of Locust's stats.

Locust times requests; a generation job is several requests over minutes. Each finished job is
reported once, as two entries whose names contain ``job``:

- request type ``JOB``, name ``"<label> job"``: wall milliseconds from the first submit attempt
  (waits for ``Retry-After`` included) until the user saw a terminal status; a failed or timed
  out job is a failure of that entry;
- request type ``POLLS``, name ``"<label> polls per job"``: the number of status polls, carried
  in the response-time field (so its median and percentiles are polls, not milliseconds).

A job cut short by the end of the run is not reported.
"""

from __future__ import annotations

import time

from locust.env import Environment

JOB = "JOB"
POLLS = "POLLS"


class JobFailed(Exception):
    """A job that ended ``failed``, timed out, or could not be followed to its end."""


class Job:
    """One job being timed: ``job = Job(env, "text2video")``, ``job.polled()``, ``job.done()``."""

    def __init__(self, environment: Environment, label: str) -> None:
        self.environment = environment
        self.label = label
        self.polls = 0
        self.started = time.perf_counter()
        self.reported = False

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def polled(self) -> None:
        """Count one status poll."""
        self.polls += 1

    def done(self, error: str | None = None) -> None:
        """Report the job (once): a success, or a failure with ``error``."""
        if self.reported:
            return
        self.reported = True
        fire = self.environment.events.request.fire
        fire(
            request_type=JOB,
            name=f"{self.label} job",
            response_time=self.elapsed_ms,
            response_length=0,
            exception=JobFailed(error) if error else None,
            context={},
        )
        fire(
            request_type=POLLS,
            name=f"{self.label} polls per job",
            response_time=self.polls,
            response_length=0,
            exception=None,
            context={},
        )
