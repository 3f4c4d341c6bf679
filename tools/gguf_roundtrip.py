#!/usr/bin/env python3
"""Cross-check Roost's GGUF code against gguf-py's GGUFReader.

    gguf_roundtrip.py dump FILE        print what gguf-py reads, as normalized JSON
    gguf_roundtrip.py check DIR        compare DIR/expected.json (written by the Swift
                                       tests with GGUFWriter) with what gguf-py reads
                                       from the files listed there; exit 1 on mismatch

Normalized form, shared with tests/python and `roostd inspect --json`:
  metadata: {key: {"type": "uint32", "value": 5}} for scalars,
            {key: {"type": "array", "element_type": T, "values": [...]}} for arrays,
            where elements of a nested array are again {"type": "array", ...} objects.
  tensors:  [{"name", "type" (ggml name), "shape" (ne0 first), "offset" (relative to the
            data section), "bytes", "fnv1a64" (16 hex digits)}]
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType

TYPE_NAMES = {
    GGUFValueType.UINT8: "uint8", GGUFValueType.INT8: "int8",
    GGUFValueType.UINT16: "uint16", GGUFValueType.INT16: "int16",
    GGUFValueType.UINT32: "uint32", GGUFValueType.INT32: "int32",
    GGUFValueType.FLOAT32: "float32", GGUFValueType.BOOL: "bool",
    GGUFValueType.STRING: "string", GGUFValueType.ARRAY: "array",
    GGUFValueType.UINT64: "uint64", GGUFValueType.INT64: "int64",
    GGUFValueType.FLOAT64: "float64",
}

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = (1 << 64) - 1


def fnv1a64(data: bytes) -> str:
    """64-bit FNV-1a, as `roostd inspect --checksums` prints it."""
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return f"{h:016x}"


def _scalar(part: np.ndarray, vtype: GGUFValueType) -> Any:
    v = part.tolist()[0]
    if vtype == GGUFValueType.BOOL:
        return bool(v)
    if vtype in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
        return float(v)
    return int(v)


def _decode(parts: list[np.ndarray], i: int, vtype: GGUFValueType) -> tuple[Any, int]:
    """Walks gguf-py's field parts (its own parse) and rebuilds the value, keeping nesting
    that ReaderField.contents() flattens."""
    if vtype == GGUFValueType.STRING:
        return bytes(parts[i + 1].tobytes()).decode("utf-8", errors="replace"), i + 2
    if vtype == GGUFValueType.ARRAY:
        etype = GGUFValueType(int(parts[i][0]))
        length = int(parts[i + 1][0])
        i += 2
        values = []
        for _ in range(length):
            v, i = _decode(parts, i, etype)
            values.append(v)
        return {"type": "array", "element_type": TYPE_NAMES[etype], "values": values}, i
    return _scalar(parts[i], vtype), i + 1


def normalize_field(field: Any) -> dict[str, Any]:
    vtype = GGUFValueType(field.types[0])
    # parts: key length, key bytes, value type, then the value's own parts.
    value, _ = _decode(field.parts, 3, vtype)
    if vtype == GGUFValueType.ARRAY:
        return value
    return {"type": TYPE_NAMES[vtype], "value": value}


def read_with_gguf_py(path: str | Path, checksums: bool = True) -> dict[str, Any]:
    r = GGUFReader(str(path))
    metadata = {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue  # gguf-py's pseudo-fields for the header
        metadata[name] = normalize_field(field)
    tensors = []
    for t in r.tensors:
        raw = np.asarray(t.data).tobytes()
        entry = {
            "name": t.name,
            "type": t.tensor_type.name,
            "shape": [int(x) for x in t.shape],
            "offset": int(t.data_offset) - int(r.data_offset),
            "bytes": int(t.n_bytes),
        }
        if checksums:
            entry["fnv1a64"] = fnv1a64(raw)
        tensors.append(entry)
    version = int(r.fields["GGUF.version"].parts[-1][0])
    return {
        "version": version,
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "metadata": metadata,
        "tensors": tensors,
    }


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, str) or isinstance(b, str):  # "nan", "inf" from JSON writers
            return str(a) == str(b) or (str(a) == "nan" and isinstance(b, float) and math.isnan(b)) \
                or (str(b) == "nan" and isinstance(a, float) and math.isnan(a))
        fa, fb = float(a), float(b)
        return fa == fb or (math.isnan(fa) and math.isnan(fb))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def diff(expected: dict[str, Any], actual: dict[str, Any], label: str) -> list[str]:
    problems = []
    for k in ("version", "alignment", "data_offset"):
        if k in expected and expected[k] != actual[k]:
            problems.append(f"{label}: {k}: expected {expected[k]}, gguf-py read {actual[k]}")
    em, am = expected["metadata"], actual["metadata"]
    if list(em) != list(am):
        problems.append(f"{label}: metadata keys: expected {list(em)}, gguf-py read {list(am)}")
    for k in em:
        if k in am and not same_value(em[k], am[k]):
            problems.append(f"{label}: metadata {k}: expected {em[k]!r}, gguf-py read {am[k]!r}")
    et, at = expected["tensors"], actual["tensors"]
    if [t["name"] for t in et] != [t["name"] for t in at]:
        problems.append(f"{label}: tensor names differ: {[t['name'] for t in et]} vs {[t['name'] for t in at]}")
    for e, a in zip(et, at):
        for k in e:
            if e[k] != a.get(k):
                problems.append(f"{label}: tensor {e['name']}: {k}: expected {e[k]!r}, gguf-py read {a.get(k)!r}")
    return problems


def check(directory: Path) -> int:
    spec = json.loads((directory / "expected.json").read_text())
    problems: list[str] = []
    for entry in spec["files"]:
        actual = read_with_gguf_py(directory / entry["file"])
        problems += diff(entry, actual, entry["file"])
    for p in problems:
        print(p, file=sys.stderr)
    print(f"gguf_roundtrip: {len(spec['files'])} files, {len(problems)} problems")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "dump":
        print(json.dumps(read_with_gguf_py(argv[2]), indent=2))
        return 0
    if len(argv) == 3 and argv[1] == "check":
        return check(Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
