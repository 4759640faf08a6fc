#!/usr/bin/env python3
"""What differs, in meaning, between each hand-written schema of
ff-cli/schemas/ (a command's file, or a shape of common.schema.json) and the
one generated from its type in ff-cli/schemas/generated/ (descriptions and
key order aside).

    python3 scripts/schema-diff.py

For every property path of each shape it prints what only one side has:
a property, a required field, a type, an enum, a format, a minimum length,
or `additionalProperties: false`. Each line says which side is stricter;
a type or enum that differs both ways is a changed shape. Exits 1 when a
generated schema is looser than its hand-written one or changes its shape
(stricter is fine), 0 otherwise.
"""
import json
import os
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SCHEMAS = os.path.join(ROOT, "ff-cli", "schemas")


def resolve(node, defs):
    """A node with its `$ref`s and `allOf`s merged in: what it admits, as
    one object (a `$ref`'s siblings and `unevaluatedProperties: false`
    count, as JSON Schema 2020-12 reads them)."""
    if not isinstance(node, dict):
        return node
    node = dict(node)
    parts = []
    if "$ref" in node:
        parts.append(resolve(defs[node.pop("$ref").rsplit("/", 1)[-1]], defs))
    parts.extend(resolve(p, defs) for p in node.pop("allOf", []))
    if not parts:
        return node
    merged = {}
    for part in parts + [node]:
        for key, value in part.items():
            if key == "properties":
                merged.setdefault("properties", {}).update(value)
            elif key == "required":
                merged["required"] = sorted(set(merged.get("required", [])) | set(value))
            else:
                merged[key] = value
    if merged.get("unevaluatedProperties") is False:
        merged["additionalProperties"] = False
    return merged


def enum_of(node, defs):
    """The values a node admits when it lists them (`enum`, `const`, or a
    `oneOf` of `const`s), else None."""
    node = resolve(node, defs)
    if "enum" in node:
        return node["enum"]
    if "const" in node:
        return [node["const"]]
    if node.get("type") == "null" and "properties" not in node:
        return [None]
    alts = node.get("oneOf", node.get("anyOf"))
    if alts:
        values = [enum_of(a, defs) for a in alts]
        if all(v is not None for v in values):
            return [x for v in values for x in v]
    return None


def types(node, defs):
    """The JSON types a node admits (enum and const values counted by type)."""
    node = resolve(node, defs)
    enum = enum_of(node, defs)
    if enum is not None:
        return {type_of(v) for v in enum}
    if "anyOf" in node or "oneOf" in node:
        out = set()
        for alt in node.get("anyOf", node.get("oneOf")):
            out |= types(alt, defs)
        return out
    t = node.get("type")
    if t is None:
        return {"any"}
    return set(t) if isinstance(t, list) else {t}


def type_of(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    return "string" if isinstance(v, str) else type(v).__name__


def flatten(node, defs, path="", out=None):
    out = {} if out is None else out
    node = resolve(node, defs)
    if "anyOf" in node or "oneOf" in node:
        alts = []
        for a in node.get("anyOf", node.get("oneOf")):
            a = resolve(a, defs)
            # The same shape twice (one property in several variants) is one.
            a_key = json.dumps({k: v for k, v in a.items() if k != "description"}, sort_keys=True)
            if a_key not in [json.dumps({k: v for k, v in b.items() if k != "description"}, sort_keys=True) for b in alts]:
                alts.append(a)
        if len(alts) == 1:
            return flatten(alts[0], defs, path, out)
        objects = [a for a in alts if "properties" in a or "items" in a]
        if len(objects) == 1:
            merged = dict(objects[0])
            merged["type"] = sorted(types(node, defs) | types(objects[0], defs))
            node = merged
        elif len(objects) > 1 and len(objects) == len(alts) and all("properties" in a for a in alts):
            # Variants of one object (a tagged enum): every property any
            # variant has, each admitting what any variant admits there;
            # required where every variant requires it.
            merged = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
            props = {}
            for alt in alts:
                for name, sub in alt["properties"].items():
                    props.setdefault(name, []).append(sub)
            merged["properties"] = {
                **{n: (subs[0] if len(subs) == 1 else {"anyOf": subs}) for n, subs in props.items()},
                **node.get("properties", {}),
            }
            always = set.intersection(*(set(a.get("required", [])) for a in alts))
            merged["required"] = sorted(set(node.get("required", [])) | always)
            merged["type"] = "object"
            node = merged
    enum = enum_of(node, defs)
    admitted = types(node, defs)
    out[path or "/"] = {
        "types": admitted - ({"integer"} if "number" in admitted else set()),
        "enum": None if enum is None else {json.dumps(v) for v in enum},
        "format": node.get("format") if node.get("format") in ("date-time", "uri") else None,
        "minLength": node.get("minLength"),
        "closed": node.get("additionalProperties") is False
        or node.get("unevaluatedProperties") is False,
        "required": set(node.get("required", [])),
    }
    for name, sub in node.get("properties", {}).items():
        flatten(sub, defs, f"{path}/{name}", out)
    if "items" in node:
        flatten(node["items"], defs, f"{path}[]", out)
    return out


def nearest(tree, path):
    """The nearest ancestor of `path` that `tree` describes."""
    while path not in ("", "/"):
        path = path.rsplit("/", 1)[0].removesuffix("[]") or "/"
        if path in tree:
            return tree[path]
    return tree.get("/", {})


def compare(name, hand, gen):
    looser = []
    lines = []
    for path in sorted(set(hand) | set(gen)):
        h, g = hand.get(path), gen.get(path)
        parent = path.rsplit("/", 1)[0].removesuffix("[]") or "/"
        if h is None:
            # Refused before when the hand-written parent is closed (looser
            # now); otherwise only constrained further (stricter).
            if hand.get(parent, {}).get("closed"):
                lines.append(f"  {path}: only generated (an output with it was refused before)")
                looser.append(path)
            else:
                lines.append(f"  {path}: only generated (described now; stricter)")
            continue
        if g is None:
            # Refused now when the nearest generated ancestor is closed
            # (stricter); otherwise its constraints are gone (looser).
            if nearest(gen, path).get("closed"):
                lines.append(f"  {path}: only hand-written (refused now; stricter)")
            else:
                lines.append(f"  {path}: only hand-written")
                looser.append(path)
            continue
        if h["types"] != g["types"] and "any" in h["types"]:
            lines.append(f"  {path}: any value -> {sorted(g['types'])} (stricter)")
        elif h["types"] != g["types"]:
            more, fewer = g["types"] - h["types"], h["types"] - g["types"]
            verdict = "changed" if more and fewer else ("looser" if more else "stricter")
            lines.append(f"  {path}: type {sorted(h['types'])} -> {sorted(g['types'])} ({verdict})")
            if verdict != "stricter":
                looser.append(path)
        if h["enum"] != g["enum"]:
            if g["enum"] is None:
                lines.append(f"  {path}: enum {sorted(h['enum'])} -> any value (looser)")
                looser.append(path)
            elif h["enum"] is None or g["enum"] < h["enum"]:
                lines.append(f"  {path}: enum -> {sorted(g['enum'])} (stricter)")
            else:
                lines.append(f"  {path}: enum {sorted(h['enum'])} -> {sorted(g['enum'])} (changed)")
                looser.append(path)
        for key, what in (("format", "format"), ("minLength", "minLength")):
            if h[key] != g[key]:
                verdict = "looser" if g[key] is None else ("stricter" if h[key] is None else "changed")
                lines.append(f"  {path}: {what} {h[key]} -> {g[key]} ({verdict})")
                if verdict != "stricter":
                    looser.append(path)
        if h["closed"] != g["closed"]:
            verdict = "stricter" if g["closed"] else "looser"
            lines.append(f"  {path}: additionalProperties false {h['closed']} -> {g['closed']} ({verdict})")
            if not g["closed"]:
                looser.append(path)
        at = "" if path == "/" else path
        for field in sorted(h["required"] - g["required"]):
            lines.append(f"  {at}/{field}: required -> optional (looser)")
            looser.append(f"{at}/{field}")
        for field in sorted(g["required"] - h["required"]):
            lines.append(f"  {at}/{field}: optional -> required (stricter)")
    print(f"{name}: " + ("no difference" if not lines else f"{len(lines)} difference(s)"))
    for line in lines:
        print(line)
    return looser


def main():
    common = json.load(open(os.path.join(SCHEMAS, "common.schema.json")))
    defs = common["$defs"]
    generated_dir = os.path.join(SCHEMAS, "generated")
    bad = {}
    for file in sorted(os.listdir(generated_dir)):
        name = file.removesuffix(".schema.json")
        gen = json.load(open(os.path.join(generated_dir, file)))
        # A shape of common.schema.json, or a command's own schema file,
        # or nothing yet (a shape first described by its type).
        if name in defs:
            hand, hand_defs = defs[name], defs
        elif not os.path.exists(os.path.join(SCHEMAS, file)):
            print(f"{name}: generated only (no hand-written schema to compare)")
            continue
        else:
            hand = json.load(open(os.path.join(SCHEMAS, file)))
            hand_defs = {**defs, **hand.get("$defs", {})}
        looser = compare(
            name,
            flatten(hand, hand_defs),
            flatten(gen, gen.get("$defs", {})),
        )
        if looser:
            bad[name] = looser
    if bad:
        print(f"looser or changed: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
