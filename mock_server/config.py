"""The mock's configuration: defaults, a JSON file, and changes at run time.

One schema checks all three, so a config file, ``PATCH /__mock/config`` and the Python handle
accept and refuse the same things.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kling_testkit.credentials import MOCK_API_KEY, Credentials
from kling_testkit.pricing import default_concurrency
from kling_testkit.spec import families
from kling_testkit.spec.validation import field_path
from kling_testkit.webhooks import sign_webhook
from mock_server import strict_json
from mock_server.config_schema import validator
from mock_server.errors import ConfigError
from mock_server.rules import RuleSet

MIN_SECRET_BYTES = 32  # shorter HS256 keys are weak; PyJWT warns about them


DAY = 86400.0


@dataclass(frozen=True)
class Pack:
    """A prepaid resource pack. Times are seconds after the mock's clock start."""

    name: str
    kind: str  # "video" or "image": which tasks draw on it
    total: float
    pack_type: str = "decreasing_total"  # or "constant_period"
    starts_after_s: float = 0.0
    lifetime_s: float = 365 * DAY


def default_packs() -> tuple[Pack, ...]:
    return (Pack("video-pack", "video", 1000.0), Pack("image-pack", "image", 1000.0))


@dataclass(frozen=True)
class Account:
    """An API account: AK/SK for JWT auth, an optional API key, packs and concurrency."""

    name: str
    access_key: str
    secret_key: str
    api_key: str | None = None
    packs: tuple[Pack, ...] = field(default_factory=default_packs)
    concurrency: dict[str, int] | None = None  # per pack kind; None = the config's

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Account:
        fields = dict(data)
        if "packs" in fields:
            fields["packs"] = tuple(Pack(**p) for p in fields["packs"])
        return cls(**fields)


WITHDRAWN_2026_09_15: dict[str, tuple[str, ...]] = {
    "text2video": ("kling-v1", "kling-v1-6", "kling-v2-master", "kling-v2-1-master"),
    "image2video": (
        "kling-v1",
        "kling-v1-5",
        "kling-v1-6",
        "kling-v2-master",
        "kling-v2-1",
        "kling-v2-1-master",
    ),
    "image_generation": ("kling-v1", "kling-v1-5", "kling-v2", "kling-v2-new"),
    "virtual_try_on": ("kolors-virtual-try-on-v1", "kolors-virtual-try-on-v1-5"),
}
"""The models one source (kling-api.md section 1; a single source, uncertain) says were withdrawn
on 2026-09-15, per family: video V1 to V2.1 Master, image 1.0 to 2.0 New, virtual try-on."""

PRESETS = {"2026-09-15": WITHDRAWN_2026_09_15}
ALL_FAMILIES = "*"


def withdrawn(
    value: str | Sequence[str] | Mapping[str, Sequence[str]],
) -> dict[str, tuple[str, ...]]:
    """``withdrawn_models`` per family (``"*"``: every family): from a preset's name, a list of
    ``model_name`` values (every family), or a mapping of family to names."""
    if isinstance(value, str):
        return dict(PRESETS[value])
    if isinstance(value, Mapping):
        return {family: tuple(names) for family, names in value.items()}
    return {ALL_FAMILIES: tuple(value)}


def is_withdrawn(models: Mapping[str, Sequence[str]], family: str, model: object) -> bool:
    return model in models.get(family, ()) or model in models.get(ALL_FAMILIES, ())


def default_callbacks() -> dict[str, Any]:
    """Callback delivery: signing secret (None = unsigned), retries, allowed target hosts."""
    return {
        "secret": None,
        "max_attempts": 5,
        "backoff_s": 1.0,
        "timeout_s": 5.0,
        "allowed_hosts": ["127.0.0.1", "localhost", "::1"],
    }


def default_audit() -> dict[str, Any]:
    """How strictly the audit (``mock_server.audit``) judges clients."""
    return {
        "retry_after_grace_s": 0.05,  # wall seconds after a 429 when a request may be in flight
        "poll_interval_s": 1.0,  # mock seconds: a task queried more often is a poll storm
        "max_polls": 1000,  # queries of one task past this are a poll storm
        "max_token_lifetime_s": 3600.0,  # exp - iat above this is token misuse (documented 1800)
        "budget_units": None,  # units an account may spend or hold before a create overspends
        "retry_window_s": 60.0,  # mock seconds: a create sent again within it is a retry
        "poll_deadline_s": 1800.0,  # mock seconds: a task still polled this long after its
        # creation, not ended, is polled with no deadline
        "callback_slow_s": 3.0,  # wall seconds: a callback answered later is a slow receiver
    }


def default_durations() -> dict[str, dict[str, float]]:
    """Realistic task timings per family: seconds queued, seconds processing (before scaling)."""
    return {
        "text2video": {"queue_s": 10.0, "run_s": 120.0},
        "image2video": {"queue_s": 10.0, "run_s": 150.0},
        "image_generation": {"queue_s": 2.0, "run_s": 12.0},
    }


def default_multipliers() -> dict[str, float]:
    """How options stretch the processing time: pro mode, 10 s videos, each extra image."""
    return {"mode_pro": 1.5, "duration_10": 1.8, "per_extra_image": 0.25}


def default_accounts() -> list[Account]:
    creds = Credentials.mock_default()
    return [Account("default", creds.access_key, creds.secret_key, MOCK_API_KEY)]


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def _check_finite(value: Any, where: str) -> None:
    """Refuse NaN and infinities anywhere in a config (a JSON file cannot hold them either)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where or 'config'}: {value} is out of range (numbers must be finite)")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_finite(item, f"{where}[{index}]")


@dataclass(frozen=True)
class MockConfig:
    """Everything that shapes one mock instance. Build with :meth:`from_dict` to validate."""

    seed: int = 0
    clock: str = "real"  # "real" or "manual"
    time_scale: float = 1.0
    clock_start: float | None = None  # Unix seconds; None = wall time when the mock starts
    durations: dict[str, dict[str, float]] = field(default_factory=default_durations)
    duration_multipliers: dict[str, float] = field(default_factory=default_multipliers)
    duration_spread: float = 0.25  # sigma of the seeded lognormal spread; 0 = exact timings
    accounts: tuple[Account, ...] = field(default_factory=lambda: tuple(default_accounts()))
    auth_clock: str = "wall"  # which clock checks token exp/nbf: "wall" or "mock"
    token_leeway_s: float = 0.0
    journal_size: int = 1000
    max_tasks: int | None = None  # past it the oldest finished tasks are forgotten; None: keep
    max_body_bytes: int = 16 * 1024 * 1024
    public_base_url: str | None = None  # base of result URLs; None = the request's host
    concurrency: dict[str, int] = field(default_factory=default_concurrency)
    rate_limit: dict[str, float] | None = None  # {"requests": N, "window_s": W}; None = off
    retry_after_header: bool = True
    failure_rate: dict[str, float] = field(default_factory=dict)  # per family, 0..1
    failure_message: str = "The generation failed (simulated by the mock)"
    blocked_terms: tuple[str, ...] = ()
    response_profile: str = "current"  # the shapes answers take (mock_server.profiles)
    # model_name values refused as invalid (1201), per family ("*": all)
    withdrawn_models: dict[str, tuple[str, ...]] = field(default_factory=dict)
    policy_action: str = "reject"  # "reject" at submit (400/1301) or "fail" the task
    policy_message: str = "Failure to pass the risk control system"
    result_ttl_s: float = 30 * DAY
    callbacks: dict[str, Any] = field(default_factory=default_callbacks)
    audit: dict[str, Any] = field(default_factory=default_audit)
    rules: tuple[dict[str, Any], ...] = ()
    control_token: str | None = None  # when set, every /__mock call must carry it
    max_namespaces: int = 1000  # /ns/<name> mocks kept; the least recently used goes first
    control_host_check: bool = True  # /__mock answers only loopback Host names (bound to loopback)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MockConfig:
        """Validate ``data`` (any subset of the fields) and build a config on the defaults."""
        return cls().patched(data)

    @classmethod
    def from_file(cls, path: str | Path) -> MockConfig:
        """Read a JSON config file."""
        try:
            data = strict_json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        return cls.from_dict(data)

    def patched(self, changes: Mapping[str, Any]) -> MockConfig:
        """Return a copy with ``changes`` applied; nested dicts merge, lists replace.

        ``changes`` is copied: the caller's dicts are never shared with the config.
        """
        _check_finite(changes, "")
        error = next(iter(validator().iter_errors(changes)), None)
        if error is not None:
            where = field_path(error.absolute_path) or "config"
            if isinstance(error.schema, dict) and "x-name" in error.schema:  # a key of a map
                known = ", ".join(error.schema["enum"])
                raise ConfigError(
                    f"{where}: unknown {error.schema['x-name']} {_short(repr(error.instance))}; "
                    f"known: {known}"
                )
            raise ConfigError(f"{where}: {_short(error.message)}")
        changes = copy.deepcopy(dict(changes))
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "accounts":
                values[key] = tuple(Account.from_dict(a) for a in value)
            elif key == "withdrawn_models":
                values[key] = withdrawn(value)
            elif key in ("blocked_terms", "rules"):
                values[key] = tuple(value)
            elif key in ("callbacks", "audit"):
                values[key] = {**getattr(self, key), **value}
            elif key in ("durations", "duration_multipliers", "failure_rate", "concurrency"):
                merged = copy.deepcopy(getattr(self, key))
                for name, item in value.items():
                    merged[name] = (
                        {**merged.get(name, {}), **item} if isinstance(item, dict) else item
                    )
                values[key] = merged
            else:
                values[key] = value
        new = replace(self, **values)
        new._check()
        return new

    def _check(self) -> None:
        names, keys = set(), set()
        for account in self.accounts:
            if len(account.secret_key.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"account {account.name!r}: secret_key must be at least "
                    f"{MIN_SECRET_BYTES} bytes"
                )
            if account.name in names or account.access_key in keys:
                raise ConfigError(f"account {account.name!r}: name and access_key must be unique")
            names.add(account.name)
            keys.add(account.access_key)
        for key in ("durations", "failure_rate"):
            for family in getattr(self, key):
                if family not in families():
                    raise ConfigError(f"{key}: unknown family {family!r}")
        if self.callbacks["secret"]:
            try:
                sign_webhook(self.callbacks["secret"], "probe", 0, "")
            except ValueError as exc:
                raise ConfigError(f"callbacks.secret: {exc}") from None
        if self.public_base_url is not None:
            try:  # the pattern cannot say what an IPv6 literal or a port may be; urllib can
                parts = urlsplit(self.public_base_url)
                if parts.hostname is None or parts.port == 0:
                    raise ValueError("no host")
            except ValueError as exc:
                raise ConfigError(f"public_base_url: not a base URL ({exc})") from None
        if self.control_token is not None and len(self.control_token.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"control_token must be at least {MIN_SECRET_BYTES} bytes")
        taken = RuleSet()  # as the mock will add them: a duplicate id or too many is refused
        for index, rule in enumerate(self.rules):
            try:
                taken.add(rule)
            except ValueError as exc:
                raise ConfigError(f"rules[{index}]: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view with secrets masked."""
        data = asdict(self)
        data["accounts"] = [
            {**a, "secret_key": "***", "api_key": "***" if a["api_key"] else None}
            for a in data["accounts"]
        ]
        data["control_token"] = "***" if self.control_token else None
        data["callbacks"] = {
            **data["callbacks"],
            "secret": "***" if self.callbacks["secret"] else None,
        }
        return data


RUNTIME_KEYS = frozenset(
    {
        "seed",
        "clock",
        "time_scale",
        "durations",
        "duration_multipliers",
        "duration_spread",
        "auth_clock",
        "token_leeway_s",
        "public_base_url",
        "concurrency",
        "rate_limit",
        "retry_after_header",
        "failure_rate",
        "failure_message",
        "blocked_terms",
        "withdrawn_models",
        "response_profile",
        "policy_action",
        "policy_message",
        "result_ttl_s",
        "callbacks",
        "audit",
    }
)
"""Keys that ``PATCH /__mock/config`` may change on a running mock."""
