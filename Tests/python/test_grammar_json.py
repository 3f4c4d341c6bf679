"""`roostd grammar-sample` against an independent validator: every complete document drawn
with random logits under the grammar mask must parse with `json.loads`, validate with the
`jsonschema` package, and list object keys in the schema's property order.

Vocabularies: the built-in synthetic one, the byte vocabulary of the tiny RWKV fixture
(../shared/fixtures/rwkv-tiny, 256 tokens), and the 65,536-token RWKV World vocabulary
written to a tokenizer-only GGUF with tools/world_vocab_to_gguf_tokens.py (needs the `rwkv`
package). Run by `make test-python` (ROOSTD = the debug roostd binary).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "rwkv-tiny"
ROOSTD = os.environ.get("ROOSTD")
pytestmark = pytest.mark.skipif(not ROOSTD, reason="ROOSTD (path to roostd) is not set; run via make test-python")
sys.path.insert(0, str(REPO / "tools"))

SCHEMAS: dict[str, dict] = {
    "person": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 20},
            "age": {"type": "integer"},
            "email": {"type": "string", "maxLength": 30},
            "score": {"type": "number"},
            "active": {"type": "boolean"},
        },
        "required": ["name", "age", "active"],
        "additionalProperties": False,
    },
    "nested": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "meta": {
                "type": "object",
                "properties": {
                    "created": {"type": "string", "maxLength": 10},
                    "owner": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}},
                              "required": ["name"]},
                },
                "required": ["owner"],
            },
        },
        "required": ["id", "meta"],
    },
    "array_bounds": {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "minItems": 2, "maxItems": 4},
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": False,
                     "minItems": 2},
        },
        "required": ["tags", "pair"],
    },
    "enums": {
        "type": "object",
        "properties": {
            "color": {"enum": ["red", "green", "blue"]},
            "size": {"enum": [1, 2.5, None, "XL", {"a": [True]}]},
            "kind": {"const": "fixed"},
            "level": {"type": ["integer", "null"]},
        },
        "required": ["color", "size", "kind"],
    },
    "any_of": {
        "type": "object",
        "properties": {
            "value": {"anyOf": [
                {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"]},
                {"type": "object", "properties": {"label": {"type": "string", "maxLength": 8}}, "required": ["label"]},
                {"type": "string", "maxLength": 5},
                {"type": "null"},
            ]},
            "choice": {"oneOf": [{"type": "boolean"}, {"type": "integer"}]},
        },
        "required": ["value", "choice"],
    },
    "recursive": {
        "$ref": "#/$defs/node",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2},
                },
                "required": ["value"],
            },
        },
    },
    "definitions_and_nullable": {
        "definitions": {"tag": {"type": "string", "maxLength": 4, "nullable": True}},
        "type": "array",
        "items": {"$ref": "#/definitions/tag"},
        "minItems": 1,
        "maxItems": 3,
    },
    "optional_only": {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "string", "maxLength": 3},
            "c": {"type": "boolean"},
            "d": {"type": "null"},
        },
    },
    "unicode": {
        "type": "object",
        "properties": {
            "città": {"type": "string", "minLength": 2, "maxLength": 12},
            "名前": {"enum": ["日本", "é\"x", "tab\there", "😀"]},
            "quote\"key": {"type": "string", "maxLength": 4},
        },
        "required": ["città", "名前", "quote\"key"],
    },
    "patterns": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{2}-\\d{2,4}$"},
            "words": {"type": "string", "pattern": "^(foo|bar)(,(foo|bar)){0,3}$"},
            "decimal": {"type": "string", "pattern": "^-?\\d+(\\.\\d{1,2})?$"},
            "has_digit": {"type": "string", "pattern": "[0-9]"},
            "no_comma": {"type": "string", "pattern": "^[^,]{1,8}$"},
            "shape": {"type": "string", "pattern": "^\\w{1,6}@\\w{1,6}\\.(com|org)$"},
        },
        "required": ["code", "words", "decimal", "has_digit", "no_comma", "shape"],
    },
    "free_form": {
        "type": "object",
        "properties": {
            "extra": {"type": "object", "additionalProperties": {"type": "integer"}},
            "anything": {},
        },
        "required": ["extra"],
    },
}

NEGATIVE = [
    ({"type": "string", "pattern": "^(?=a)a+$"}, "pattern"),
    ({"type": "string", "pattern": "^a+$", "maxLength": 3}, "pattern"),
    ({"type": "object", "properties": {"n": {"type": "number", "multipleOf": 2}}}, "multipleOf"),
    ({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}, "minimum"),
    ({"allOf": [{"type": "string"}]}, "allOf"),
    ({"type": "object", "properties": {"a": {}}, "additionalProperties": True}, "additionalProperties"),
    ({"type": "array", "uniqueItems": True}, "uniqueItems"),
    ({"type": "object", "patternProperties": {"^x": {}}}, "patternProperties"),
    ({"$ref": "#/components/schemas/X"}, "#/components/schemas/X"),
]


def fixture(name: str) -> Path:
    p = FIXTURES / name
    if not p.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared fixture missing: {p}")
        pytest.skip(f"shared fixture missing: {p}")
    return p


@pytest.fixture(scope="module")
def world_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import world_vocab_to_gguf_tokens as wv
    try:
        wv.rwkv_package_dir()
    except wv.MissingRwkvPackage:
        if os.environ.get("CI") == "true":
            pytest.fail("the rwkv package is not installed (tools/requirements.txt)")
        pytest.skip("the rwkv package is not installed")
    path = tmp_path_factory.mktemp("world") / "world-vocab.gguf"
    wv.write_gguf(str(path))
    return path


def roostd(*args: str) -> subprocess.CompletedProcess[str]:
    assert ROOSTD is not None
    return subprocess.run([ROOSTD, *args], capture_output=True, text=True, timeout=900)


def sample(schema_file: Path | None, vocab: list[str], samples: int, seed: int, max_tokens: int) -> list[dict]:
    args = ["grammar-sample", "--samples", str(samples), "--seed", str(seed), "--max-tokens", str(max_tokens), *vocab]
    args += ["--schema", str(schema_file)] if schema_file else ["--json-object"]
    p = roostd(*args)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert len(lines) == samples
    return lines


def resolve(schema: dict, root: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if ref == "#":
            schema = root
        else:
            _, section, name = ref.split("/")
            schema = root[section][name]
    return schema


class Pairs(list):
    pass


def parse_pairs(text: str):
    return json.loads(text, object_pairs_hook=lambda kv: Pairs(kv))


def to_value(x):
    if isinstance(x, Pairs):
        return {k: to_value(v) for k, v in x}
    if isinstance(x, list):
        return [to_value(v) for v in x]
    return x


def with_defs(sub: dict, root: dict) -> dict:
    """`sub` as a standalone schema (the root's $defs/definitions attached for its $refs)."""
    full = dict(sub)
    for key in ("$defs", "definitions"):
        if key in root:
            full.setdefault(key, root[key])
    return full


def check_order(text: str, schema: dict) -> None:
    """Keys of every object appear in the order of its schema's `properties`, each at most
    once (recursively through $ref, the anyOf/oneOf alternative that validates, items and
    prefixItems)."""
    def walk(node, sch) -> None:
        sch = resolve(sch, schema)
        if not isinstance(sch, dict):
            return
        for key in ("anyOf", "oneOf"):
            if key in sch:
                value = to_value(node)
                for alt in sch[key]:
                    if jsonschema.Draft202012Validator(with_defs(resolve(alt, schema), schema)).is_valid(value):
                        walk(node, alt)
                        return
                raise AssertionError(f"no {key} alternative matches {value!r}")
        if isinstance(node, Pairs):
            props = list(sch.get("properties", {}))
            keys = [k for k, _ in node]
            assert len(set(keys)) == len(keys), keys
            if props:
                positions = [props.index(k) for k in keys]
                assert positions == sorted(positions), (keys, props)
                for k, v in node:
                    walk(v, sch["properties"][k])
            return
        if isinstance(node, list):
            prefix = sch.get("prefixItems", [])
            for i, item in enumerate(node):
                sub = prefix[i] if i < len(prefix) else sch.get("items", {})
                if isinstance(sub, dict):
                    walk(item, sub)
    walk(parse_pairs(text), schema)


def vocab_args(kind: str, world: Path | None) -> list[str]:
    if kind == "synthetic":
        return []
    if kind == "tiny":
        return ["--vocab-gguf", str(fixture("tiny-rwkv-7v0-834K-FP32.gguf"))]
    assert world is not None
    return ["--vocab-gguf", str(world)]


def oracle_schema(schema):
    """`nullable: true` is OpenAPI's spelling, which jsonschema ignores: rewrite it as a
    type list with "null" (what roostd implements) for the oracle."""
    if isinstance(schema, list):
        return [oracle_schema(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: oracle_schema(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") is True and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = types + (["null"] if "null" not in types else [])
    return out


def check_samples(lines: list[dict], schema: dict | None) -> int:
    complete = 0
    for line in lines:
        if not line["complete"]:
            continue
        complete += 1
        value = json.loads(line["text"])
        if schema is None:
            assert isinstance(value, dict), line["text"]
        else:
            jsonschema.validate(value, oracle_schema(schema), cls=jsonschema.Draft202012Validator)
            check_order(line["text"], schema)
    return complete


@pytest.mark.parametrize("vocab", ["synthetic", "tiny", "world"])
@pytest.mark.parametrize("name", list(SCHEMAS))
def test_samples_validate(name: str, vocab: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    world = request.getfixturevalue("world_gguf") if vocab == "world" else None
    schema = SCHEMAS[name]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(schema, ensure_ascii=False))
    samples = 6 if vocab == "world" else 12
    lines = sample(path, vocab_args(vocab, world), samples, seed=7, max_tokens=1500)
    complete = check_samples(lines, schema)
    assert complete >= samples // 2, lines


@pytest.mark.parametrize("vocab", ["synthetic", "tiny", "world"])
def test_json_object_mode(vocab: str, request: pytest.FixtureRequest) -> None:
    world = request.getfixturevalue("world_gguf") if vocab == "world" else None
    lines = sample(None, vocab_args(vocab, world), 12, seed=3, max_tokens=1500)
    assert check_samples(lines, None) >= 6, lines


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCHEMAS["person"]))
    assert sample(path, [], 4, 11, 800) == sample(path, [], 4, 11, 800)


@pytest.mark.parametrize("schema, keyword", NEGATIVE)
def test_unsupported_keywords_fail(schema: dict, keyword: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(schema))
    p = roostd("grammar-sample", "--schema", str(path), "--samples", "1")
    assert p.returncode != 0
    assert keyword in p.stderr, p.stderr


def test_invalid_json_schema_fails(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"type": "object",')
    p = roostd("grammar-sample", "--schema", str(path), "--samples", "1")
    assert p.returncode != 0 and "not valid JSON" in p.stderr, p.stderr
