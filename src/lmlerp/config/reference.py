"""The configuration reference (docs/configuration.md), generated from the schema's descriptions.

One source of truth: every key, its type, bounds and meaning come from `schema.yaml`, so the page
cannot drift from what `validate` accepts (a test compares the committed page with this output).

    python -m lmlerp.config.reference > docs/configuration.md
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from lmlerp.config.validation import schema

HEADER = """# Configuration reference

Generated from `src/lmlerp/config/schema.yaml` by `python -m lmlerp.config.reference`; do not
edit by hand. Every config (`config.yaml`, `configs/paper.yaml`, `tests/configs/tiny.yaml`) is
validated against this schema before any job runs: it is closed at every level (an unknown key is
an error), and a violation stops the run with one line naming the key, e.g.
`config key 'finetune.lr[1]': -0.5 is less than or equal to the minimum of 0`. Write floats in
exponent form with a dot (`1.0e-4`): YAML 1.1 reads `1e-4` as text, and the error says so.
Cross-key rules the schema cannot express (shares summing to 1, a block that fits the context,
sources that exist) are checked right after it (`lmlerp.config.checks`).

`<name>` stands for a key of your choice (a model or dataset name).
"""


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """The node with a `$ref` replaced by its definition (the node's own keys win)."""
    node = dict(node)
    while "$ref" in node:
        target = root
        for part in node.pop("$ref").removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **node}
    return node


def _kind(node: Mapping[str, Any]) -> str:
    """A short type: enum choices, the JSON type with its bounds, the item type of an array."""
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    bounds = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤")):
        if key in node:
            bounds.append(f"{sign} {node[key]}")
    if "exclusiveMaximum" in node:
        bounds.append(f"< {node['exclusiveMaximum']}")
    if kind == "array" and "items" in node:
        return f"list of {_kind(node['items'])}"
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def entries(
    node: Mapping[str, Any] | None = None, prefix: str = ""
) -> Iterator[tuple[str, str, bool, str]]:
    """(dotted key, type, required, description) of every key, depth first in schema order."""
    root = schema()
    node = _resolve(root if node is None else node, root)
    required = set(node.get("required", []))
    children = dict(node.get("properties", {}))
    if isinstance(node.get("additionalProperties"), Mapping) and "properties" not in node:
        children["<name>"] = node["additionalProperties"]
    for name, child in children.items():
        child = _resolve(child, root)
        key = f"{prefix}.{name}" if prefix else name
        description = " ".join(str(child.get("description", "")).split())
        yield key, _kind(child), name in required, description
        if child.get("type") == "object" or "properties" in child:
            yield from entries(child, key)


def markdown() -> str:
    """The whole reference page: one table per top-level section."""
    lines = [HEADER]
    section = None
    for key, kind, required, description in entries():
        top = key.split(".", 1)[0]
        if top != section:
            section = top
            lines += [
                "",
                f"## `{top}`",
                "",
                "| key | type | required | meaning |",
                "|---|---|---|---|",
            ]
        cell = description.replace("|", "\\|")
        lines.append(f"| `{key}` | {kind} | {'yes' if required else ''} | {cell} |")
    return "\n".join(lines) + "\n"


def known(key: str) -> bool:
    """Whether a dotted key (named keys written as any name) is a key of the schema."""
    parts = key.split(".")
    for candidate, *_ in entries():
        pattern = candidate.split(".")
        if len(pattern) == len(parts) and all(
            p in (q, "<name>") for q, p in zip(parts, pattern, strict=True)
        ):
            return True
    return False


if __name__ == "__main__":
    print(markdown(), end="")
