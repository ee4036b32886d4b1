"""Hypothesis strategies for Kling request bodies, generated from the API contract.

Limits, enums, ranges, model names and which fields exclude or need others (the document's
``dependentSchemas``, ``dependentRequired`` and ``anyOf``) are read from the OpenAPI document;
cross-field rules that carry a value (camera types needing a config, the ``sound`` voices need,
aspect ratios a model refuses) are asked of :func:`~kling_testkit.spec.check_request` with probe
bodies.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from jsonschema import Draft202012Validator

from kling_testkit.image_bytes import jpeg_bytes, png_bytes
from kling_testkit.spec import ContractViolation, check_request, families, field, schema
from kling_testkit.spec.document import DESIGN_2026, alternatives, exclusions, requirements, resolve
from kling_testkit.spec.validation import field_path

__all__ = [
    "InvalidRequest",
    "base64_images",
    "camera_controls",
    "external_task_ids",
    "image2video_requests",
    "image_generation_requests",
    "invalid_image2video_requests",
    "invalid_image_generation_requests",
    "invalid_requests",
    "invalid_text2video_requests",
    "negative_prompts",
    "prompts",
    "requests",
    "text2video_requests",
]

T2V, I2V, IMAGES = "text2video", "image2video", "image_generation"
_NOT_GENERATED = frozenset({"multi_shot", "shot_type", "multi_prompt"})  # rules of their own
_SAFE = string.ascii_lowercase + string.digits
_PIECE = 80  # characters of a text drawn one by one; longer texts repeat them
_Path = tuple[str | int, ...]
_Chars = st.SearchStrategy[str]
Alphabet = str | _Chars
Body = dict[str, Any]


@dataclass(frozen=True)
class InvalidRequest:
    """A request body that breaks exactly one rule of the contract.

    ``field`` names the broken field as :func:`check_request` reports it (``"prompt"``,
    ``"camera_control.config.pan"``); ``rule`` is one of ``maxLength``, ``enum``, ``type``,
    ``range``, ``unknown_field``, ``required``, ``pattern``, or for a family of the 2026 design
    a rule of its ``x-kling-family.contents`` (:class:`kling_testkit.strategies_2026.Violation`).
    """

    body: Body
    field: str
    rule: str


def _request(family: str) -> str:
    return families()[family].request_schema


def _accepted(family: str, body: Body, name: str, values: list[Any] | None = None) -> list[Any]:
    """The ``values`` of ``name`` (its enum by default) that ``check_request`` accepts in body."""
    out = []
    for value in field(_request(family), name)["enum"] if values is None else values:
        try:
            check_request(family, {**body, name: value})
            out.append(value)
        except ContractViolation:
            pass
    return out


@cache
def _camera_types() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Camera types valid without a config, and those that need one (asked of the rules)."""
    types: list[str] = resolve(schema("CameraControl")["properties"]["type"])["enum"]
    bare = _accepted(T2V, {"prompt": "p"}, "camera_control", [{"type": t} for t in types])
    free = tuple(control["type"] for control in bare)
    return free, tuple(t for t in types if t not in free)


def _required(node: dict[str, Any]) -> list[str]:
    # ``else`` counts: the multi-shot fields that would make the text-to-video ``if`` hold are
    # never generated.
    return [*node.get("required", []), *node.get("else", {}).get("required", [])]


def _allows(rx: re.Pattern[str], char: str) -> bool:
    """Whether ``char`` may be part of a value: alone, or after a letter (a prompt needs one)."""
    return rx.search(char) is not None or rx.search(f"a{char}") is not None


@cache
def _alphabet_for(pattern: str, visible: bool = False) -> st.SearchStrategy[str]:
    """Letters of many scripts, emoji, punctuation and the white space ``pattern`` allows."""
    rx = re.compile(pattern)
    controls = [c for c in map(chr, range(128)) if c.isspace() and not c.isprintable()]
    return st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")),
        st.characters(categories=["L", "M"]),
        st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),  # emoji
        st.characters(categories=["P"]),
        st.sampled_from([" ", *controls]),
    ).filter(lambda c: _allows(rx, c) and not (visible and c.isspace()))


@st.composite
def _texts(draw: st.DrawFn, chars: _Chars, size: range, visible: _Chars | None = None) -> str:
    """Text of a length in ``size``; with ``visible``, one of its characters is not white space.

    Hypothesis cannot draw thousands of characters one by one, so a long text repeats a piece.
    """
    room = min(size.stop - 1 - (visible is not None), _PIECE)
    text = draw(st.text(chars, min_size=int(visible is None and size.start > 0), max_size=room))
    if visible is not None:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(visible) + text[at:]
    if text and (len(text) < size.start or draw(st.integers(0, 3)) == 0):
        target = draw(st.integers(max(size.start, len(text)), size.stop - 1))
        text = (text * -(-target // len(text)))[:target]
    return text


def _tokens(min_size: int = 1, max_size: int | None = 16) -> st.SearchStrategy[str]:
    return st.text(_SAFE, min_size=max(min_size, 1), max_size=max_size)


def _numbers(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    low, high = node.get("minimum"), node.get("maximum")
    if "x-kling-decimals" in node:  # at most that many decimals: tenths drawn as integers
        scale = 10 ** int(node["x-kling-decimals"])
        steps = st.integers(math.ceil(low * scale), math.floor(high * scale))
        return steps.map(lambda step: step / scale)
    ints = st.integers(None if low is None else math.ceil(low), high and math.floor(high))
    if node.get("type") == "integer":
        return ints
    return ints | st.floats(low, high, allow_nan=False, allow_infinity=False)


def _from_schema(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for one schema node: enums, ranges, sizes and required keys from the node."""
    node = resolve(node)
    kind = node.get("type")
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return _numbers(node)
    if kind == "array":
        items = _from_schema(node["items"])
        return st.lists(items, min_size=node.get("minItems", 0), max_size=node.get("maxItems"))
    if kind == "object":
        return _objects(node)
    if "x-kling-image" in node:  # an image: a URL, or inline Base64 of a documented format
        formats = st.sampled_from(node["x-kling-image"]["formats"])
        return st.builds("https://example.com/{}.{}".format, _tokens(), formats) | base64_images()
    if node.get("pattern") == schema("HttpUrl")["pattern"]:
        return st.builds("https://example.com/media/{}".format, _tokens())
    one_class = re.fullmatch(r"\^(\[[^\]]+\])\+\$", node.get("pattern", ""))
    if one_class:  # one character class, repeated: drawn from it
        chars = st.from_regex(one_class.group(1), fullmatch=True)
        return st.text(chars, min_size=max(1, node.get("minLength", 1)), max_size=16)
    if "pattern" in node:
        size = range(node.get("minLength", 0), node["maxLength"] + 1)
        if re.search(node["pattern"], " ") is None:  # white space alone is refused: a prompt
            size = range(max(size.start, 1), size.stop)
            visible = _alphabet_for(node["pattern"], True)
            return _texts(_alphabet_for(node["pattern"]), size, visible)
        return _texts(_alphabet_for(node["pattern"]), size)
    return _tokens(node.get("minLength", 1), node.get("maxLength"))


@st.composite
def _objects(draw: st.DrawFn, node: dict[str, Any]) -> Body:
    """A valid object: its required keys, some optional ones that fit together, then whatever
    its conditionals (``if``/``then``/``else``, alone or in ``allOf``) ask of what was drawn."""
    props = node.get("properties", {})
    drawn = (
        [*node.get("required", []), *draw(st.lists(st.sampled_from(sorted(props)), unique=True))]
        if props
        else []
    )
    chosen = _compatible(node, drawn)
    body = {k: draw(_from_schema(props[k])) for k in props if k in chosen}
    return _settle(draw, node, body)


def _settle(draw: st.DrawFn, node: dict[str, Any], body: Body) -> Body:
    """Apply the node's conditionals in order: the branch that holds adds the keys it requires
    and redraws the fields it gives a schema of their own (a ``$ref`` or a ``type``)."""
    props = node.get("properties", {})
    rules = ([node] if "if" in node else []) + [r for r in node.get("allOf", []) if "if" in r]
    for rule in rules:
        holds = Draft202012Validator(rule["if"]).is_valid(body)
        branch = rule.get("then" if holds else "else") or {}
        for key in branch.get("required", []):
            if key not in body:
                body[key] = draw(_from_schema(props[key]))
        for key, sub in branch.get("properties", {}).items():
            if key in body and ("$ref" in sub or "type" in sub):
                body[key] = draw(_from_schema(sub))
    return body


def _size_args(name: str, node: dict[str, Any], low: int, high: int | None, floor: int) -> range:
    """Check ``min_size``/``max_size`` against a string schema; return the lengths allowed."""
    limit: int = node["maxLength"]
    least = max(node.get("minLength", 0), floor)
    high = limit if high is None else high
    if low < least:
        raise InvalidArgument(f"{name}: min_size={low} is below the contract's minimum {least}")
    if high > limit:
        raise InvalidArgument(f"{name}: max_size={high} is above the contract's maxLength {limit}")
    if low > high:
        raise InvalidArgument(f"{name}: min_size={low} is greater than max_size={high}")
    return range(low, high + 1)


def prompts(
    *, min_size: int = 1, max_size: int | None = None, alphabet: Alphabet | None = None
) -> st.SearchStrategy[str]:
    """Return a strategy of prompts the contract accepts.

    Each has ``min_size``..``max_size`` code points (``max_size`` defaults to, and may not
    exceed, the Prompt ``maxLength``), matches the Prompt pattern and has a visible character.
    ``alphabet`` (a string or a strategy of characters) replaces the default mix of scripts,
    emoji, punctuation and allowed white space; drawn characters the pattern refuses are dropped.
    """
    node = field(_request(T2V), "prompt")
    size = _size_args("prompts", node, min_size, max_size, floor=1)
    rx = re.compile(node["pattern"])
    if alphabet is None:
        return _texts(_alphabet_for(rx.pattern), size, _alphabet_for(rx.pattern, True))
    if isinstance(alphabet, str):
        bad = sorted({c for c in alphabet if not _allows(rx, c)})
        if bad or alphabet.isspace() or not alphabet:
            raise InvalidArgument(f"prompts: alphabet needs a visible character; refused: {bad!r}")
        alphabet = st.sampled_from(sorted(set(alphabet)))
    chars = alphabet.filter(lambda c: len(c) == 1 and _allows(rx, c))
    return _texts(chars, size, chars.filter(lambda c: not c.isspace()))


def negative_prompts(*, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Return a strategy of negative prompts (possibly empty) within the NegativePrompt limits."""
    node = field(_request(T2V), "negative_prompt")
    size = _size_args("negative_prompts", node, node.get("minLength", 0), max_size, floor=0)
    return _texts(_alphabet_for(node["pattern"]), size)


_ENCODERS = {"png": png_bytes, "jpeg": jpeg_bytes}


@st.composite
def _image_sizes(draw: st.DrawFn, least: int, aspect: float) -> tuple[int, int]:
    # Sides up to 2x and 3x the least: the limits worth meeting are the small side and the
    # aspect ratio (a flat image never nears the byte limit), and larger ones only cost time.
    short = draw(st.integers(least, 2 * least))
    long = draw(st.integers(short, max(short, min(3 * least, math.floor(short * aspect)))))
    return (long, short) if draw(st.booleans()) else (short, long)


@lru_cache(maxsize=512)
def _encoded(kind: str, width: int, height: int) -> str:
    return base64.b64encode(_ENCODERS[kind](width, height)).decode("ascii")


def base64_images(*, formats: Sequence[str] | None = None) -> st.SearchStrategy[str]:
    """Return a strategy of inline images the contract accepts (format ``kling-image-base64``).

    Each is raw standard Base64 (no ``data:`` prefix) of a real PNG or JPEG, one of ``formats``
    (default: every format of the document's ``x-kling-image``), with sides at least
    ``min_side_px`` and an aspect ratio within ``max_aspect``; flat grey, so a few kilobytes.
    """
    limits = schema("ImageInput")["x-kling-image"]
    allowed: list[str] = limits["formats"]
    chosen = list(allowed if formats is None else formats)
    unknown = [f for f in chosen if f not in allowed or f not in _ENCODERS]
    if isinstance(formats, str) or not chosen or unknown:
        raise InvalidArgument(f"formats must be a non-empty list of {allowed}; got {formats!r}")
    sizes = _image_sizes(limits["min_side_px"], float(limits["max_aspect"]))

    def encode(kind: str, size: tuple[int, int]) -> str:
        text = _encoded(kind, *size)
        if len(text) * 3 // 4 > limits["max_bytes"]:  # not reached with flat images this small
            raise InvalidArgument(f"a {kind} of {size} is over the byte limit")
        return text

    return st.builds(encode, st.sampled_from(chosen), sizes)


def external_task_ids() -> st.SearchStrategy[str]:
    """Return a strategy of unique-ish ``external_task_id`` values such as ``order-<32 hex>``.

    They come from random UUIDs, so repeats are unlikely but possible: use
    ``st.lists(external_task_ids(), unique=True)`` when a test needs several distinct ids.
    """
    limit: int = field(_request(T2V), "external_task_id")["maxLength"]
    prefixes = st.sampled_from(("order", "job", "run", "batch"))
    return st.builds(lambda p, u: f"{p}-{u.hex}"[:limit], prefixes, st.uuids())


@st.composite
def _configured_cameras(draw: st.DrawFn, types: tuple[str, ...]) -> Body:
    axes = {k: resolve(v) for k, v in schema("CameraConfig")["properties"].items()}
    moving = draw(st.sampled_from(sorted(axes)))
    amount = draw(_numbers(axes[moving]).filter(lambda v: v != 0))
    zero_ok = {a for a, n in axes.items() if n.get("minimum", 0) <= 0 <= n.get("maximum", 0)}
    still = sorted(zero_ok - {moving})
    config = dict.fromkeys(draw(st.lists(st.sampled_from(still), unique=True)), 0)
    return {"type": draw(st.sampled_from(types)), "config": {**config, moving: amount}}


def camera_controls() -> st.SearchStrategy[Body]:
    """Return a strategy of valid ``camera_control`` objects.

    Types that need a config (``simple``) get one with exactly one non-zero axis within the axis
    range, other axes absent or zero; the other types come without a config.
    """
    free, configured = _camera_types()
    options: list[st.SearchStrategy[Body]] = []
    if free:
        options.append(st.sampled_from(free).map(lambda t: {"type": t}))
    if configured:
        options.append(_configured_cameras(configured))
    return st.one_of(options)


@cache
def _field_values(family: str, name: str, models: tuple[str, ...]) -> st.SearchStrategy[Any]:
    node = field(_request(family), name)
    special: dict[str, st.SearchStrategy[Any]] = {
        "model_name": st.sampled_from(models),
        "external_task_id": external_task_ids(),
        "callback_url": st.builds("https://example.com/hooks/{}".format, _tokens()),
        "camera_control": camera_controls(),
    }
    if name == "prompt":  # a prompt needs a visible character
        size = range(max(node.get("minLength", 0), 1), node["maxLength"] + 1)
        return _texts(_alphabet_for(node["pattern"]), size, _alphabet_for(node["pattern"], True))
    return special[name] if name in special else _from_schema(node)


@st.composite
def _requests(draw: st.DrawFn, family: str, models: tuple[str, ...] | None) -> Body:
    request = _request(family)
    props = schema(request)["properties"]
    names = [n for n in props if n not in _NOT_GENERATED and not props[n].get("deprecated")]
    needed = [*_required(schema(request)), *(["model_name"] if models else [])]
    drawn = [*needed, *draw(st.lists(st.sampled_from(names), unique=True))]
    chosen = _compatible(schema(request), drawn)
    if models is None and "model_name" in props:
        models = tuple(field(request, "model_name")["enum"])
    body = {n: draw(_field_values(family, n, models or ())) for n in names if n in chosen}
    body = _settle(draw, schema(request), body)
    _share(schema(request), body)
    # Values that depend on other fields: drawn among those the rules accept.
    if "voice_list" in body:
        body["sound"] = draw(st.sampled_from(_accepted(family, body, "sound")))
    if family == IMAGES and "aspect_ratio" in body:
        body["aspect_ratio"] = draw(st.sampled_from(_accepted(family, body, "aspect_ratio")))
    return body


def _share(node: dict[str, Any], body: Body) -> None:
    """Shorten lists that share a cap (``x-kling-max-references``) until they fit it."""
    rule = node.get("x-kling-max-references")
    if rule is None:
        return
    limit = int(rule["max"])
    for other, cap in rule.get("max_with", {}).items():
        if body.get(other):
            limit = min(limit, int(cap))
    for name in rule["fields"]:
        if name in body:
            body[name] = body[name][:limit]
            limit -= len(body[name])


def _compatible(request: dict[str, Any], drawn: list[str]) -> set[str]:
    """The drawn fields that can go together, in draw order, by the document's cross-field rules.

    A field excluded by one kept earlier is dropped, and so is one whose needs cannot be met;
    when the body needs one of several groups (``image`` or ``image_tail``) and has none, the
    first that fits is added.
    """
    excluded, needs = exclusions(request), requirements(request)
    chosen: set[str] = set()

    def fits(names: list[str]) -> bool:
        return not any(excluded.get(n, frozenset()) & (chosen | set(names)) for n in names)

    for name in drawn:
        group = [name, *needs.get(name, [])]
        if name not in chosen and fits(group):
            chosen |= set(group)
    branches = alternatives(request)
    if branches and not any(set(branch) <= chosen for branch in branches):
        chosen |= set(next(branch for branch in branches if fits(branch)))
    return chosen


def _valid(family: str, models: Sequence[str] | None) -> st.SearchStrategy[Body]:
    if family not in families():
        raise InvalidArgument(f"unknown family {family!r}; known: {', '.join(families())}")
    has_models = "model_name" in schema(_request(family))["properties"]
    known: list[str] = field(_request(family), "model_name")["enum"] if has_models else []
    if models is not None and (isinstance(models, str) or not models):
        raise InvalidArgument(f"models must be a non-empty list of model names; got {models!r}")
    unknown = [m for m in models or () if m not in known]
    if unknown:
        raise InvalidArgument(f"unknown {family} model(s) {unknown}; known: {', '.join(known)}")
    return _requests(family, None if models is None else tuple(models))


def requests(family: str, *, models: Sequence[str] | None = None) -> st.SearchStrategy[Body]:
    """Return a strategy of valid create bodies of any family of the contract (``families()``).

    Required fields, random optional ones that fit together, nested objects and the values
    the document's conditionals ask for. ``models`` restricts ``model_name`` (then always
    present). A family that names an earlier video (``video_id``) gets a made-up id: the mock
    answers it with 400/1201 "From video not found" unless the id is one it made; so does a
    multi-elements edit's ``session_id`` (put one from ``init-selection`` in its place).

    A family of the 2026 design (the model in its path) gets ``contents``, ``settings`` and
    ``options`` that keep its ``x-kling-family.contents`` rules
    (:mod:`kling_testkit.strategies_2026`); ``models`` is refused for it.
    """
    if _is_2026(family):
        if models is not None:
            raise InvalidArgument(f"{family} takes its model from its path; models is refused")
        from kling_testkit import strategies_2026

        return strategies_2026.valid_requests(family)
    return _valid(family, models)


def invalid_requests(family: str) -> st.SearchStrategy[InvalidRequest]:
    """Return a strategy of :class:`InvalidRequest`: a valid body of ``family``, one rule broken.

    For a family of the 2026 design the broken rule is one of its schema's or one of its
    ``x-kling-family.contents`` (``counts``, ``needs``, ``unique``, ``requires``, ``excludes``,
    ``max_total``, ``settings``).
    """
    if family not in families():
        raise InvalidArgument(f"unknown family {family!r}; known: {', '.join(families())}")
    if _is_2026(family):
        from kling_testkit import strategies_2026

        return strategies_2026.invalid_requests(family)
    return _invalid(family)


def _is_2026(family: str) -> bool:
    if family not in families():
        raise InvalidArgument(f"unknown family {family!r}; known: {', '.join(families())}")
    return families()[family].design == DESIGN_2026


def text2video_requests(*, models: Sequence[str] | None = None) -> st.SearchStrategy[Body]:
    """Return a strategy of valid text-to-video bodies: a prompt and random optional fields.

    ``models`` restricts ``model_name`` (then always present) to these contract models.
    """
    return _valid(T2V, models)


def image2video_requests(*, models: Sequence[str] | None = None) -> st.SearchStrategy[Body]:
    """Return a strategy of valid image-to-video bodies: ``image`` and/or ``image_tail`` URLs."""
    return _valid(I2V, models)


def image_generation_requests(*, models: Sequence[str] | None = None) -> st.SearchStrategy[Body]:
    """Return a strategy of valid image-generation bodies: a prompt and random optional fields."""
    return _valid(IMAGES, models)


def _walk(node: dict[str, Any], value: Any, path: _Path = ()) -> Iterator[tuple[_Path, Any, Any]]:
    """Every value in a body, depth first, with the resolved schema node that governs it."""
    node = resolve(node)
    yield path, node, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(node["properties"][key], item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(node["items"], item, (*path, i))


def _breakable(body: Body, request: str) -> list[tuple[str, _Path]]:
    """Every (rule, path) that one change of ``body`` can break without breaking another rule."""
    out: list[tuple[str, _Path]] = []
    for path, node, value in _walk(schema(request), body):
        if isinstance(value, dict):
            out += [("required", (*path, k)) for k in _required(node) if k in value]
            if node.get("additionalProperties") is False:
                out.append(("unknown_field", path))
        if not path:
            continue
        # Moving a still camera axis (a zero), or making it a string, would break the one-axis
        # rule as well.
        still = value == 0 and path[:2] == ("camera_control", "config")
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        # A bad sound next to voices would break the voice rule too; a wrong type, the enum.
        if "enum" in node and not (path == ("sound",) and body.get("voice_list")):
            out.append(("enum", path))
        elif "type" in node and "enum" not in node and not still:
            out.append(("type", path))
        if isinstance(value, str) and "maxLength" in node and "x-kling-image" not in node:
            out.append(("maxLength", path))  # images are left alone: their limit is megabytes
        if path == ("prompt",) and isinstance(value, str):
            out.append(("pattern", path))
        if numeric and not still and ("minimum" in node or "maximum" in node):
            out.append(("range", path))
    return out


def _broken_value(draw: st.DrawFn, rule: str, node: dict[str, Any], value: Any) -> Any:
    """A replacement for ``value`` that breaks ``rule`` of ``node`` and nothing else."""
    if rule == "maxLength":
        return value + "x" * (node["maxLength"] - len(value) + draw(st.integers(1, 8)))
    if rule == "enum":
        near = st.sampled_from(node["enum"]).map(lambda v: str(v).upper())
        return draw((near | _tokens(1, 24)).filter(lambda v: v not in node["enum"]))
    if rule == "type" and isinstance(value, str):
        return draw(st.integers() | st.booleans() | st.none())
    if rule == "type":
        return draw(st.just(json.dumps(value)) | st.none())
    if rule == "range":
        integral = node.get("type") == "integer"
        step = draw(
            st.integers(1, 1000) if integral else st.integers(1, 1000) | st.floats(1e-3, 1e6)
        )
        above = "minimum" not in node or ("maximum" in node and draw(st.booleans()))
        out_of_range = node["maximum"] + step if above else node["minimum"] - step
        assume(not node.get("minimum", out_of_range) <= out_of_range <= node["maximum"])
        return out_of_range
    # pattern: a control character the pattern refuses (not white space, so the prompt keeps a
    # visible character), inserted, or in place of another at the length limit.
    rx = re.compile(node["pattern"])
    refused = [c for c in map(chr, range(128)) if not _allows(rx, c) and not c.isspace()]
    bad = draw(st.sampled_from(refused))
    at = draw(st.integers(0, len(value) - 1))
    return value[:at] + bad + value[at + (len(value) >= node["maxLength"]) :]


@st.composite
def _invalid(draw: st.DrawFn, family: str) -> InvalidRequest:
    request = _request(family)
    body = copy.deepcopy(draw(_requests(family, None)))
    options = _breakable(body, request)
    rule = draw(st.sampled_from(sorted({r for r, _ in options})))
    path = draw(st.sampled_from([p for r, p in options if r == rule]))
    nodes = {p: (n, v) for p, n, v in _walk(schema(request), body)}
    node, value = nodes[path]
    if rule == "unknown_field":
        typos = st.sampled_from(sorted(node["properties"])).map(lambda k: k[:-1])
        names = typos | st.from_regex(r"[a-z][a-z0-9_]{0,19}", fullmatch=True)
        key = draw(names.filter(lambda k: k and k not in node["properties"]))
        value[key] = draw(st.booleans() | st.integers() | _tokens())
        path = (*path, key)
    elif rule == "required":
        del nodes[path[:-1]][1][path[-1]]
    else:
        nodes[path[:-1]][1][path[-1]] = _broken_value(draw, rule, node, value)
    return InvalidRequest(body=body, field=field_path(path), rule=rule)


def invalid_text2video_requests() -> st.SearchStrategy[InvalidRequest]:
    """Return a strategy of :class:`InvalidRequest`: a valid text-to-video body, one rule broken."""
    return _invalid(T2V)


def invalid_image2video_requests() -> st.SearchStrategy[InvalidRequest]:
    """Return a strategy of :class:`InvalidRequest`: a valid image-to-video body, 1 rule broken."""
    return _invalid(I2V)


def invalid_image_generation_requests() -> st.SearchStrategy[InvalidRequest]:
    """Return a strategy of :class:`InvalidRequest`: a valid image-generation body, one broken."""
    return _invalid(IMAGES)
