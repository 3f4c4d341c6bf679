"""`roostd inspect --json --checksums` against gguf-py's GGUFReader on files gguf-py writes.

Run by `make test-python` with ROOSTD set to the debug roostd binary.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import gguf_roundtrip as rt  # noqa: E402

ROOSTD = os.environ.get("ROOSTD")
pytestmark = pytest.mark.skipif(not ROOSTD, reason="ROOSTD (path to roostd) is not set; run via make test-python")

N_EXPERT = 4
TOKENS = [f"tok{i}" for i in range(300)]


def write_file(path: Path, alignment: int) -> None:
    rng = np.random.default_rng(alignment)
    w = gguf.GGUFWriter(str(path), "olmoe")
    if alignment != 32:
        w.add_custom_alignment(alignment)
    w.add_name("oracle test")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -2_000_000_000)
    w.add_uint64("t.u64", 2**64 - 1)
    w.add_int64("t.i64", -(2**63))
    w.add_float32("t.f32", 0.1)
    w.add_float64("t.f64", 1e-300)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo \"quoted\"\n\ttab")
    w.add_array("t.arr.i32", [1, -2, 3])
    w.add_array("t.arr.f32", [0.5, -1.25])
    w.add_array("t.arr.str", ["a", "bc", "<|im_end|>"])
    w.add_array("t.arr.bool", [True, False])
    w.add_key_value("t.arr.u8", [1, 2, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("t.arr.u64", [2**64 - 1, 0], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("t.arr.f64", [1.5, -2.5], V.ARRAY, sub_type=V.FLOAT64)
    w.add_array("t.arr.nested", [[1, 2], [3], [4, 5, 6]])
    w.add_array("t.arr.nested.str", [["x", "y"], ["z"]])
    w.add_array("t.arr.long", list(range(200)))
    w.add_uint32("olmoe.expert_count", N_EXPERT)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(TOKENS)

    w.add_tensor("f32.2d", rng.standard_normal((3, 8), dtype=np.float32))
    w.add_tensor("f32.3d", rng.standard_normal((2, 3, 4), dtype=np.float32))
    w.add_tensor("f16", rng.standard_normal((2, 16)).astype(np.float16))
    x = rng.standard_normal((4, 64), dtype=np.float32)
    w.add_tensor("q8_0", gguf.quants.quantize(x, Q.Q8_0), raw_dtype=Q.Q8_0)
    w.add_tensor("q4_0", gguf.quants.quantize(x, Q.Q4_0), raw_dtype=Q.Q4_0)
    qk = gguf.GGML_QUANT_SIZES[Q.Q4_K][1]
    w.add_tensor("q4_k.raw", rng.integers(0, 256, (2, qk * 2), dtype=np.uint8), raw_dtype=Q.Q4_K)
    for layer in range(2):
        for part, (rows, cols) in (("gate", (16, 64)), ("up", (16, 64)), ("down", (64, 32))):
            e = rng.standard_normal((N_EXPERT, rows, cols), dtype=np.float32)
            w.add_tensor(f"blk.{layer}.ffn_{part}_exps.weight", gguf.quants.quantize(e, Q.Q8_0), raw_dtype=Q.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module", params=[32, 64])
def oracle_file(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp(f"a{request.param}") / f"oracle-{request.param}.gguf"
    write_file(path, request.param)
    return path


def inspect_json(path: Path) -> dict:
    out = subprocess.run([ROOSTD, "inspect", str(path), "--json", "--checksums"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def strip(v):
    """roostd's array objects carry length/truncated; the normalized form does not."""
    if isinstance(v, dict) and v.get("type") == "array":
        return {"type": "array", "element_type": v["element_type"], "values": [strip(x) for x in v["values"]]}
    return v


def test_metadata_matches_gguf_py(oracle_file):
    ours = inspect_json(oracle_file)
    theirs = rt.read_with_gguf_py(oracle_file)
    assert list(ours["metadata"]) == list(theirs["metadata"])
    assert ours["metadata_count"] == len(theirs["metadata"])
    for key, expected in theirs["metadata"].items():
        got = ours["metadata"][key]
        if got.get("type") == "array":
            assert got["length"] == len(expected["values"]), key
            if got["truncated"]:
                shown = len(got["values"])
                assert 0 < shown < got["length"], key
                expected = dict(expected, values=expected["values"][:shown])
        assert rt.same_value(strip(got), expected), f"{key}: {got!r} != {expected!r}"


def test_long_and_tokenizer_arrays_are_summarized(oracle_file):
    meta = inspect_json(oracle_file)["metadata"]
    tokens = meta["tokenizer.ggml.tokens"]
    assert tokens["length"] == len(TOKENS) and tokens["truncated"] and len(tokens["values"]) <= 16
    assert tokens["values"] == TOKENS[: len(tokens["values"])]
    assert meta["t.arr.long"]["truncated"] and meta["t.arr.long"]["length"] == 200
    assert meta["t.arr.nested"]["truncated"] is False


def test_tensors_match_gguf_py(oracle_file):
    ours = inspect_json(oracle_file)
    theirs = rt.read_with_gguf_py(oracle_file)
    assert ours["alignment"] == theirs["alignment"]
    assert ours["data_offset"] == theirs["data_offset"]
    assert ours["gguf_version"] == theirs["version"]
    assert ours["file_size"] == oracle_file.stat().st_size
    assert [t["name"] for t in ours["tensors"]] == [t["name"] for t in theirs["tensors"]]
    for a, b in zip(ours["tensors"], theirs["tensors"]):
        for k in ("type", "shape", "offset", "bytes", "fnv1a64"):
            assert a[k] == b[k], f"{a['name']}: {k}: {a[k]} != {b[k]}"
        assert a["file_offset"] == ours["data_offset"] + a["offset"]
        assert a["offset"] % ours["alignment"] == 0
    shapes = {t["name"]: t["shape"] for t in ours["tensors"]}
    assert shapes["f32.3d"] == [4, 3, 2]  # ggml order, ne0 first
    assert shapes["q4_k.raw"] == [512, 2]


def test_totals(oracle_file):
    ours = inspect_json(oracle_file)
    r = gguf.GGUFReader(str(oracle_file))
    assert ours["totals"]["tensors"] == len(r.tensors)
    assert ours["totals"]["bytes"] == sum(int(t.n_bytes) for t in r.tensors)
    assert ours["totals"]["elements"] == sum(int(t.n_elements) for t in r.tensors)
    per_type: dict[str, int] = {}
    for t in r.tensors:
        per_type[t.tensor_type.name] = per_type.get(t.tensor_type.name, 0) + int(t.n_bytes)
    assert {t["type"]: t["bytes"] for t in ours["type_totals"]} == per_type


def test_moe_bytes_per_expert(oracle_file):
    ours = inspect_json(oracle_file)
    r = gguf.GGUFReader(str(oracle_file))
    moe = ours["moe"]
    assert moe["expert_count"] == N_EXPERT
    want: dict[int, int] = {}
    for t in r.tensors:
        if "_exps." in t.name:
            layer = int(t.name.split(".")[1])
            assert int(t.shape[2]) == N_EXPERT
            want[layer] = want.get(layer, 0) + int(t.n_bytes) // N_EXPERT
    assert {l["layer"]: l["bytes_per_expert"] for l in moe["layers"]} == want
    assert moe["expert_bytes_total"] == sum(want.values()) * N_EXPERT
    assert moe["dense_bytes_total"] == ours["totals"]["bytes"] - moe["expert_bytes_total"]


def test_human_output(oracle_file):
    out = subprocess.run([ROOSTD, "inspect", str(oracle_file), "--checksums"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for needle in ("olmoe", "oracle test", "q4_k.raw", "Q4_K", "[4, 3, 2]", "KiB", "experts", "totals per type"):
        assert needle in out.stdout, needle
    assert "tok299" not in out.stdout  # tokenizer arrays never in full


def test_broken_files_fail_cleanly(oracle_file, tmp_path):
    data = oracle_file.read_bytes()
    cuts = sorted({0, 1, 4, 8, 16, 24, 100, 1000, len(data) // 2, len(data) - 1} | set(range(0, len(data), max(1, len(data) // 40))))
    for n in cuts:
        p = tmp_path / f"cut{n}.gguf"
        p.write_bytes(data[:n])
        out = subprocess.run([ROOSTD, "inspect", str(p)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1, (n, out.returncode, out.stderr)
        assert "roostd inspect:" in out.stderr and str(p) in out.stderr
    bad = bytearray(data)
    bad[0:4] = b"GGUX"
    p = tmp_path / "magic.gguf"
    p.write_bytes(bytes(bad))
    out = subprocess.run([ROOSTD, "inspect", str(p)], capture_output=True, text=True)
    assert out.returncode == 1 and "magic" in out.stderr
    for missing in (tmp_path / "nope.gguf", tmp_path):
        out = subprocess.run([ROOSTD, "inspect", str(missing), "--json"], capture_output=True, text=True)
        assert out.returncode == 1 and out.stdout == "" and out.stderr


RWKV = sorted(Path("/work/shared/fixtures/rwkv-tiny").glob("*.gguf"))


@pytest.mark.parametrize("path", RWKV, ids=[p.name for p in RWKV])
def test_rwkv_fixtures(path):
    ours = inspect_json(path)
    theirs = rt.read_with_gguf_py(path)
    assert [t["name"] for t in ours["tensors"]] == [t["name"] for t in theirs["tensors"]]
    for a, b in zip(ours["tensors"], theirs["tensors"]):
        assert (a["type"], a["shape"], a["offset"], a["fnv1a64"]) == (b["type"], b["shape"], b["offset"], b["fnv1a64"])
    assert ours["moe"] is None
