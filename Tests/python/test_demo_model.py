"""The bundled demo model, models/roost-demo.gguf: it loads, says what it is, fits the size
budget, and `roostd logits` gives the logits that the torch model of tools/train_demo_model.py
computed (Tests/Fixtures/demo-model-expected.json; torch is not needed here).

The expected logits come from torch running the weights as the file stores them (dequantized by
gguf-py), with the head's input rounded to Q8_0 as Roost's quantized products round it; the
remaining difference is float rounding (measured: ~1e-7). Tolerance: 1e-3 absolute on logits of
magnitude ~10.

Run by `make test-python` with ROOSTD set to the debug roostd binary.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "roost-demo.gguf"
EXPECTED = REPO / "Tests" / "Fixtures" / "demo-model-expected.json"
MAX_BYTES = 8 * 1000 * 1000
TOLERANCE = 1e-3

ROOSTD = os.environ.get("ROOSTD")
pytestmark = pytest.mark.skipif(not ROOSTD, reason="ROOSTD (path to roostd) is not set; run via make test-python")


def roostd(*args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([ROOSTD, *args], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **(env or {})})
    assert out.returncode == 0, f"roostd {' '.join(args)} failed ({out.returncode}): {out.stderr}"
    return out.stdout


def test_size_budget():
    assert MODEL.stat().st_size <= MAX_BYTES, f"{MODEL} has {MODEL.stat().st_size} bytes, more than {MAX_BYTES}"


def test_inspect_metadata():
    info = json.loads(roostd("inspect", str(MODEL), "--json"))
    meta = {k: v.get("value") for k, v in info["metadata"].items()}
    assert info["architecture"] == "rwkv7"
    assert meta["general.name"] == "roost-demo"
    assert meta["general.license"] == "CC0-1.0"
    assert "King James" in meta["general.source.description"]
    assert "bible-kjv-text" in meta["general.source.url"]
    assert meta["general.description"]
    assert meta["tokenizer.ggml.model"] == "rwkv"
    assert info["metadata"]["tokenizer.ggml.tokens"]["length"] == 65536
    types = {t["name"]: t["type"] for t in info["tensors"]}
    assert types["token_embd.weight"] == "Q4_0"
    assert types["output.weight"] == "Q5_0"
    assert types["blk.0.time_mix_key.weight"] == "F16"


def cases():
    return json.loads(EXPECTED.read_text())["cases"]


@pytest.mark.parametrize("kernels", ["default", "ref"])
@pytest.mark.parametrize("case", cases(), ids=lambda c: c["prompt"][:24])
def test_logits_match_torch(case, kernels):
    env = {} if kernels == "default" else {"ROOST_KERNELS": kernels}
    out = json.loads(roostd("logits", str(MODEL), "--tokens", ",".join(map(str, case["tokens"])), "--json", env=env))
    logits = out["logits"]
    assert out["vocabulary"] == 65536 and len(logits) == 65536
    assert out["argmax"] == case["argmax"]
    diffs = [abs(logits[t["token"]] - t["logit"]) for t in case["top"]]
    assert max(diffs) <= TOLERANCE, f"max |roostd - torch| = {max(diffs)} over the top {len(diffs)}"
    # the top-20 by roostd are the expected tokens in the expected order
    order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))[: len(case["top"])]
    assert order == [t["token"] for t in case["top"]]
