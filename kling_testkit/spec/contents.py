"""Create bodies of the 2026 design: ``contents[]``, ``settings{}`` and ``options{}``.

The schema of each family says the form (which content types a model takes, each item's fields,
the settings and their ranges). What a schema cannot say is in the family's
``x-kling-family.contents`` and checked here:

* ``counts``: each content type's ``[min, max]`` items;
* ``needs``: types an item needs beside it (a last frame needs a first);
* ``rules``, each applying when any content type of ``when.contents`` is there (or a setting of
  ``when.settings`` has a listed value) and none of ``unless`` holds: ``settings`` limits a
  setting to some values (an explicit other value is refused; an absent one takes the first
  allowed value instead of its default), ``requires`` names settings that must be sent,
  ``excludes`` names content types that cannot be sent, and ``max_total`` caps the items of
  several types together.

A body that passes becomes the task's effective parameters, flat as a legacy body's are: the
settings with their defaults, the options, ``contents``, ``prompt`` (the prompt item's text)
and ``model_name`` (the model of the path), so every rule the mock shares between designs
(external ids, callbacks, prompts, prices) reads them the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from kling_testkit.spec.document import Family, field
from kling_testkit.spec.validation import ContractViolation

__all__ = ["effective_params", "prompt_of"]


def prompt_of(contents: object) -> str | None:
    """The text of the prompt item of a ``contents`` list, if it has one."""
    if not isinstance(contents, list):
        return None
    for item in contents:
        if isinstance(item, dict) and item.get("type") == "prompt":
            text = item.get("text")
            return text if isinstance(text, str) else None
    return None


def _names(items: Sequence[str]) -> str:
    shown = [str(i) for i in items]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _values(items: Sequence[Any]) -> str:
    return _names([repr(v) for v in items])


def _holds(cond: Mapping[str, Any], types: Counter[str], settings: Mapping[str, Any]) -> bool:
    """Whether a ``when``/``unless`` condition holds: any listed type there, or any setting
    with one of its listed values."""
    if any(types[t] for t in cond.get("contents", ())):
        return True
    return any(settings.get(k) in values for k, values in cond.get("settings", {}).items())


def _describe(rule: Mapping[str, Any]) -> str:
    """The condition of a rule in words: ``with last_frame``, ``without first_frame ...``."""
    parts = []
    when = rule.get("when", {})
    if when.get("contents"):
        parts.append(f"with {_names(when['contents'])}")
    for name, values in when.get("settings", {}).items():
        parts.append(f"when settings.{name} is {_values(values)}")
    if rule.get("unless", {}).get("contents"):
        parts.append(f"without {_names(rule['unless']['contents'])}")
    return " ".join(parts)


def _check_items(family: Family, contents: list[dict[str, Any]]) -> Counter[str]:
    rules = family.contents
    types: Counter[str] = Counter(item["type"] for item in contents)
    for kind, (least, most) in rules.get("counts", {}).items():
        if not least <= types[kind] <= most:
            span = f"exactly {least}" if least == most else f"{least} to {most}"
            raise ContractViolation(
                f"contents must have {span} {kind} item(s) for {family.model}; got {types[kind]}",
                "contents",
            )
    for kind, needed in rules.get("needs", {}).items():
        missing = [n for n in needed if types[kind] and not types[n]]
        if missing:
            raise ContractViolation(f"contents: a {kind} needs a {_names(missing)}", "contents")
    seen: set[str] = set()
    for index, item in enumerate(contents):
        handle = item.get("id")
        if handle is None:
            continue
        if handle in seen:
            raise ContractViolation(
                f"contents[{index}].id {handle!r} is already used by another item of this task",
                f"contents[{index}].id",
            )
        seen.add(handle)
    return types


def effective_params(family: Family, body: Mapping[str, Any]) -> dict[str, Any]:
    """Check what the schema cannot say about a (schema-valid) 2026 body; return the task's
    effective parameters (see the module's docstring)."""
    contents: list[dict[str, Any]] = list(body["contents"])
    types = _check_items(family, contents)
    given: dict[str, Any] = dict(body.get("settings", {}))
    shape = field(family.request_schema, "settings")
    settings = {
        name: node["default"] for name, node in shape["properties"].items() if "default" in node
    }
    settings.update(given)
    for rule in family.contents.get("rules", ()):
        if "when" in rule and not _holds(rule["when"], types, settings):
            continue
        if "unless" in rule and _holds(rule["unless"], types, settings):
            continue
        why = _describe(rule)
        for name in rule.get("requires", ()):
            if name not in given:
                raise ContractViolation(f"settings.{name} is required {why}", f"settings.{name}")
        banned = [t for t in rule.get("excludes", ()) if types[t]]
        if banned:
            raise ContractViolation(f"contents cannot have {_names(banned)} {why}", "contents")
        total = rule.get("max_total")
        if total is not None:
            count = sum(types[t] for t in total["types"])
            if count > int(total["max"]):
                raise ContractViolation(
                    f"contents can have at most {total['max']} {_names(total['types'])} items "
                    f"together{' ' + why if why else ''}; got {count}",
                    "contents",
                )
        for name, allowed in rule.get("settings", {}).items():
            if name in given and given[name] not in allowed:
                raise ContractViolation(
                    f"settings.{name} must be {_values(allowed)} {why}; got {given[name]!r}",
                    f"settings.{name}",
                )
            if settings.get(name) not in allowed:
                settings[name] = allowed[0]
    params: dict[str, Any] = {**settings, **body.get("options", {}), "contents": contents}
    params["model_name"] = family.model
    prompt = prompt_of(contents)
    if prompt is not None:
        params["prompt"] = prompt
    return params
