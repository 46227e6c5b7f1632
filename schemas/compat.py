"""Detect breaking changes between two JSON Schemas of the same event and version.

Compatibility policy (full compatibility within one ``schemaversion``):

* **Breaking** (needs a new ``schema_version`` plus an upcaster): removing or renaming a
  property; narrowing a type (``number`` -> ``integer``, a union losing a member, enum
  values removed, a new ``pattern``/``format``/``multipleOf``, a tighter
  ``minLength``/``maxLength``/``minimum``/``maximum``/``minItems``/``maxItems``,
  ``uniqueItems`` added); making a property required when it has no default; tightening
  ``additionalProperties`` or ``propertyNames``.
* **Allowed**: adding an optional property (subscribers ignore unknown fields), widening a
  type or a bound, making a required property optional, and adding an enum value.
  Widening is only safe with a *subscribers-first* rollout: an old subscriber rejects a
  value it does not know (its event is dead-lettered with ``invalid_data``), so a producer
  must not emit a new enum value, or a wider value, before every subscriber runs a
  ``schemas`` release that accepts it. When that ordering cannot be guaranteed (external
  subscribers), bump ``schema_version`` instead.

Only local references (``#/...``, e.g. ``#/$defs/Preferences``) are resolved.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Schema = Mapping[str, Any]

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_EXACT_RESTRICTIONS = ("pattern", "format", "multipleOf")
_ANY = "any"


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """List the changes from ``old`` to ``new`` that break readers or writers of ``old``.

    Each message starts with the JSON path of the change, e.g.
    ``$.data.languages: property removed``.
    """
    diff = _SchemaDiff(old_root=old, new_root=new)
    return diff.compare(old, new, "$", frozenset())


@dataclass(frozen=True)
class _SchemaDiff:
    """Compares two schema nodes, resolving ``$ref`` against their own root documents."""

    old_root: Schema
    new_root: Schema

    def compare(self, old: Any, new: Any, path: str, seen: frozenset[tuple[str, str]]) -> list[str]:
        """Return the breaking changes between two (possibly referencing) schema nodes."""
        refs = (_ref_of(old), _ref_of(new))
        if refs != ("", "") and refs in seen:
            return []
        seen = seen | {refs}
        old_node = _resolve(self.old_root, old)
        new_node = _resolve(self.new_root, new)
        old_branches = _branches(self.old_root, old_node)
        new_branches = _branches(self.new_root, new_node)
        if len(old_branches) == 1 and len(new_branches) == 1:
            return self._compare_single(old_branches[0], new_branches[0], path, seen)
        problems: list[str] = []
        for branch in old_branches:
            problems += self._compare_branch(branch, new_branches, path, seen)
        return problems

    def _compare_branch(
        self, old: Schema, candidates: list[Schema], path: str, seen: frozenset[tuple[str, str]]
    ) -> list[str]:
        """Find the new union member that still accepts an old one and compare with it."""
        kinds = _kinds(old)
        matching = [new for new in candidates if _accepts(_kinds(new), kinds)]
        if not matching:
            return [f"{path}: type narrowed: {_show(kinds)} no longer accepted"]
        attempts = [self._compare_single(old, new, path, seen) for new in matching]
        return min(attempts, key=len)

    def _compare_single(
        self, old: Schema, new: Schema, path: str, seen: frozenset[tuple[str, str]]
    ) -> list[str]:
        problems = _type_changes(old, new, path) + _enum_changes(old, new, path)
        problems += _restriction_changes(old, new, path)
        problems += self._object_changes(old, new, path, seen)
        problems += self._nested_changes(old, new, path, seen)
        return problems

    def _object_changes(
        self, old: Schema, new: Schema, path: str, seen: frozenset[tuple[str, str]]
    ) -> list[str]:
        old_props: Mapping[str, Any] = old.get("properties", {})
        new_props: Mapping[str, Any] = new.get("properties", {})
        added = sorted(set(new_props) - set(old_props))
        problems: list[str] = []
        for name in old_props:
            if name not in new_props:
                hint = f" (renamed to {', '.join(added)}?)" if added else ""
                problems.append(f"{path}.{name}: property removed{hint}")
            else:
                problems += self.compare(old_props[name], new_props[name], f"{path}.{name}", seen)
        newly_required = set(new.get("required", ())) - set(old.get("required", ()))
        for name in sorted(newly_required):
            if "default" not in _resolve(self.new_root, new_props.get(name, {})):
                problems.append(f"{path}.{name}: newly required without a default")
        return problems

    def _nested_changes(
        self, old: Schema, new: Schema, path: str, seen: frozenset[tuple[str, str]]
    ) -> list[str]:
        """Compare ``items``, ``additionalProperties``, ``propertyNames``, patterns."""
        problems: list[str] = []
        for keyword, suffix in (
            ("items", "[]"),
            ("additionalProperties", ".*"),
            ("propertyNames", "{key}"),
        ):
            old_sub = old.get(keyword, True)
            new_sub = new.get(keyword, True)
            if new_sub is True:
                continue
            if new_sub is False and old_sub is not False:
                problems.append(f"{path}: {keyword} tightened to false")
            elif old_sub is True and new_sub is not False:
                problems.append(f"{path}: {keyword} now constrained")
            elif isinstance(old_sub, Mapping) and isinstance(new_sub, Mapping):
                problems += self.compare(old_sub, new_sub, f"{path}{suffix}", seen)
        old_patterns: Mapping[str, Any] = old.get("patternProperties", {})
        for pattern, new_sub in new.get("patternProperties", {}).items():
            if pattern not in old_patterns:
                problems.append(f"{path}: patternProperties {pattern!r} added")
            else:
                problems += self.compare(old_patterns[pattern], new_sub, f"{path}.*", seen)
        return problems


def _type_changes(old: Schema, new: Schema, path: str) -> list[str]:
    old_kinds, new_kinds = _kinds(old), _kinds(new)
    if _accepts(new_kinds, old_kinds):
        return []
    return [f"{path}: type narrowed from {_show(old_kinds)} to {_show(new_kinds)}"]


def _enum_changes(old: Schema, new: Schema, path: str) -> list[str]:
    old_values, new_values = _allowed_values(old), _allowed_values(new)
    if new_values is None:
        return []
    if old_values is None:
        return [f"{path}: now restricted to {sorted(new_values)}"]
    removed = sorted(old_values - new_values)
    return [f"{path}: enum values removed: {', '.join(removed)}"] if removed else []


def _restriction_changes(old: Schema, new: Schema, path: str) -> list[str]:
    problems: list[str] = []
    for keyword in _LOWER_BOUNDS:
        if keyword in new and (keyword not in old or new[keyword] > old[keyword]):
            problems.append(f"{path}: {keyword} tightened to {new[keyword]}")
    for keyword in _UPPER_BOUNDS:
        if keyword in new and (keyword not in old or new[keyword] < old[keyword]):
            problems.append(f"{path}: {keyword} tightened to {new[keyword]}")
    for keyword in _EXACT_RESTRICTIONS:
        if keyword in new and new[keyword] != old.get(keyword):
            problems.append(f"{path}: {keyword} changed to {new[keyword]!r}")
    if new.get("uniqueItems") and not old.get("uniqueItems"):
        problems.append(f"{path}: uniqueItems added")
    return problems


def _ref_of(node: Any) -> str:
    return str(node.get("$ref", "")) if isinstance(node, Mapping) else ""


def _resolve(root: Schema, node: Any) -> Schema:
    """Follow local ``$ref`` chains; sibling keywords of a ``$ref`` are kept."""
    if not isinstance(node, Mapping):
        return {}
    resolved: Schema = node
    for _ in range(32):
        ref = resolved.get("$ref")
        if not (isinstance(ref, str) and ref.startswith("#")):
            break
        siblings = {key: value for key, value in resolved.items() if key != "$ref"}
        resolved = {**_pointer(root, ref[1:]), **siblings}
    return resolved


def _pointer(root: Schema, pointer: str) -> Schema:
    node: Any = root
    for token in filter(None, pointer.split("/")):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, Mapping):
        raise ValueError(f"$ref #{pointer} does not point to a schema object")
    return node


def _branches(root: Schema, node: Schema) -> list[Schema]:
    """Flatten ``anyOf``/``oneOf`` unions into their resolved members."""
    members = node.get("anyOf") or node.get("oneOf")
    if not members:
        return [node]
    flattened: list[Schema] = []
    for member in members:
        flattened += _branches(root, _resolve(root, member))
    return flattened


def _kinds(node: Schema) -> frozenset[str]:
    """The JSON types a schema node accepts (``any`` when it does not say)."""
    declared = node.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list):
        return frozenset(declared)
    values = _raw_values(node)
    if values is not None:
        return frozenset(_json_type(value) for value in values)
    if "properties" in node:
        return frozenset({"object"})
    return frozenset({_ANY})


def _accepts(new_kinds: frozenset[str], old_kinds: frozenset[str]) -> bool:
    if _ANY in new_kinds:
        return True
    widened = new_kinds | ({"integer"} if "number" in new_kinds else set())
    return old_kinds <= widened


def _raw_values(node: Schema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"])
    return None


def _allowed_values(node: Schema) -> set[str] | None:
    values = _raw_values(node)
    return None if values is None else {json.dumps(value, sort_keys=True) for value in values}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _show(kinds: frozenset[str]) -> str:
    return "|".join(sorted(kinds))
