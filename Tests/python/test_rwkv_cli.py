"""`roostd logits`, `roostd perplexity` and `roostd bench` on the tiny RWKV fixtures.

The logits are checked against rwkv.cpp's expected logits (../shared/fixtures/rwkv-tiny);
the bench JSON against the key contract of ../shared/DESIGN.md. Run by `make test-python`.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "rwkv-tiny"
ROOSTD = os.environ.get("ROOSTD")
pytestmark = pytest.mark.skipif(not ROOSTD, reason="ROOSTD (path to roostd) is not set; run via make test-python")

CASES = [
    ("tiny-rwkv-7v0-834K-FP32.gguf", "expected-logits-7v0-834K.json", 0.001, 32),
    ("tiny-rwkv-7v0-834K-FP16.gguf", "expected-logits-7v0-834K.json", 0.005766, 32),
    ("tiny-rwkv-6v0-3m-Q5_1.gguf", "expected-logits-6v0-3m.json", 3.576909, 0),
    ("tiny-rwkv-5v2-730K-FP32.gguf", "expected-logits-5v2-730K.json", 0.001, 112),
]


def fixture(name: str) -> Path:
    p = FIXTURES / name
    if not p.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared fixture missing: {p}")
        pytest.skip(f"shared fixture missing: {p}")
    return p


def roostd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ROOSTD, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("model, expected, bound, argmax", CASES)
@pytest.mark.parametrize("chunk", ["1", "64"])
def test_logits_match_rwkv_cpp(model: str, expected: str, bound: float, argmax: int, chunk: str) -> None:
    exp = json.loads(fixture("expected/" + expected).read_text())
    ids = ",".join(str(t) for t in exp["prompt_token_ids"])
    p = roostd("logits", str(fixture(model)), "--tokens", ids, "--chunk", chunk, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    logits = out["logits"]
    assert len(logits) == len(exp["logits"]) == out["vocabulary"]
    diff_sum = sum(a - b for a, b in zip(logits, exp["logits"]))
    assert abs(diff_sum) <= bound * 1.05, diff_sum
    assert out["argmax"] == argmax


def test_logits_top_and_errors() -> None:
    m = str(fixture("tiny-rwkv-7v0-834K-FP32.gguf"))
    p = roostd("logits", m, "--tokens", "34,105,110", "--top", "3", "--json")
    assert p.returncode == 0, p.stderr
    top = json.loads(p.stdout)["logits"]
    assert [t["token"] for t in top][0] == 32 and len(top) == 3
    assert top[0]["logit"] >= top[1]["logit"] >= top[2]["logit"]
    bad = roostd("logits", m, "--tokens", "1,999")
    assert bad.returncode != 0 and "token 999 is outside the vocabulary 0..<256" in bad.stderr
    missing = roostd("logits", "/nonexistent.gguf", "--tokens", "1")
    assert missing.returncode != 0 and "/nonexistent.gguf" in missing.stderr


def test_perplexity(tmp_path: Path) -> None:
    m = str(fixture("tiny-rwkv-7v0-834K-FP32.gguf"))
    text = tmp_path / "t.txt"
    text.write_bytes((REPO / "README.md").read_bytes()[:2000])
    p = roostd("perplexity", m, "--file", str(text), "--ctx", "128", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["tokens"] == 2000  # byte-level vocabulary: one token per byte
    assert r["scored_tokens"] == 2000 - math.ceil(2000 / 128)
    assert 1.0 < r["perplexity"] < 256.0
    assert r["perplexity"] == pytest.approx(math.exp(r["mean_nll"]))
    # Random bytes are much less likely than English to a model trained on text.
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(2000)))
    q = roostd("perplexity", m, "--file", str(noise), "--ctx", "128", "--json")
    assert q.returncode == 0, q.stderr
    assert json.loads(q.stdout)["perplexity"] > 2 * r["perplexity"]


def test_bench_json_contract() -> None:
    m = str(fixture("tiny-rwkv-7v0-834K-FP32.gguf"))
    p = roostd("bench", m, "--json", "--prompt-tokens", "32", "--gen-tokens", "8", "--threads", "2")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    for key in ["model", "arch", "quant", "threads", "prompt_tokens", "gen_tokens", "prompt_tokens_per_s",
                "gen_tokens_per_s", "peak_rss_bytes", "weight_bytes_per_token", "read_bandwidth_bytes_per_s",
                "floor_fraction"]:
        assert key in r, key
    assert r["arch"] == "rwkv7" and r["quant"] == "f32" and r["threads"] == 2
    assert r["prompt_tokens"] == 32 and r["gen_tokens"] == 8
    assert r["prompt_tokens_per_s"] > 0 and r["gen_tokens_per_s"] > 0 and r["peak_rss_bytes"] > 0
    # Every matrix once plus one embedding row: a bit over the file's 2-D tensors minus the embedding.
    assert 2_500_000 < r["weight_bytes_per_token"] < 3_400_000
    floor = r["read_bandwidth_bytes_per_s"] / r["weight_bytes_per_token"]
    assert r["floor_fraction"] == pytest.approx(r["gen_tokens_per_s"] / floor, rel=1e-6)
    assert "batch" not in r and "batch_speedup" not in r


def test_bench_batch_keys() -> None:
    m = str(fixture("tiny-rwkv-6v0-3m-Q5_1.gguf"))
    p = roostd("bench", m, "--json", "--prompt-tokens", "16", "--gen-tokens", "4", "--threads", "2", "--batch", "3")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["batch"] == 3 and r["batch_gen_tokens_per_s"] > 0
    assert r["batch_speedup"] == pytest.approx(r["batch_gen_tokens_per_s"] / r["gen_tokens_per_s"], rel=1e-6)
    for bad in ["0", "65"]:
        q = roostd("bench", m, "--batch", bad)
        assert q.returncode != 0 and "--batch must be in 1...64" in q.stderr


def test_bench_tokens_file(tmp_path: Path) -> None:
    """Teacher forcing: after the file's prompt and generated tokens the logits are those of
    `roostd logits` on the same 24 tokens (checked against rwkv.cpp above)."""
    m = str(fixture("tiny-rwkv-7v0-834K-FP32.gguf"))
    ids = [(i * 79 + 13) % 256 for i in range(30)]
    f = tmp_path / "tokens.txt"
    f.write_text(" ".join(map(str, ids[:10])) + "\n" + "\t".join(map(str, ids[10:])) + "\n")
    p = roostd("bench", m, "--json", "--prompt-tokens", "16", "--gen-tokens", "8", "--threads", "2",
               "--tokens-file", str(f))
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    q = roostd("logits", m, "--json", "--tokens", ",".join(map(str, ids[:24])))
    assert q.returncode == 0, q.stderr
    assert r["final_argmax"] == json.loads(q.stdout)["argmax"]
    assert r["tokens_file"] == str(f)
    # Too few ids, and an id outside the vocabulary, are named.
    p = roostd("bench", m, "--prompt-tokens", "28", "--gen-tokens", "8", "--tokens-file", str(f))
    assert p.returncode != 0 and "30 token ids; --prompt-tokens + --gen-tokens need 36" in p.stderr
    f.write_text("1 2 x3")
    p = roostd("bench", m, "--prompt-tokens", "2", "--gen-tokens", "1", "--tokens-file", str(f))
    assert p.returncode != 0 and "item 3 'x3' is not a token id" in p.stderr
