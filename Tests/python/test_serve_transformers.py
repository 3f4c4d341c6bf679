"""Transformer, MoE and Mamba models through `roostd serve`.

The fixtures of Tests/Fixtures/transformers (tiny random Hugging Face models converted by
llama.cpp's converter) give transformers' greedy continuation of a fixed prompt: the daemon,
asked for a greedy completion of those prompt ids, must answer with exactly that text
(decoded here from the GGUF's byte-level vocabulary, independently of Roost's tokenizer).
Also: a KV-cache session continues after a restart, a prompt beyond the model's context gets
a 400, an MoE model under a memory budget smaller than its file answers the same through its
expert store (and /roost/v1/stats, /metrics and `roost stats` show the store), and a model file
truncated or replaced under the daemon fails requests cleanly. Run by `make test-python`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import test_server as ts

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "Tests" / "Fixtures" / "transformers"
CASES = ["llama", "qwen2", "mixtral", "qwen2moe", "qwen3moe", "olmoe", "mamba"]
pytestmark = pytest.mark.skipif(not ts.ROOSTD, reason="ROOSTD (path to roostd) is not set; run via make test-python")


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-unicode table, inverted."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def vocabulary(path: Path) -> tuple[list[str], list[int], set[int]]:
    from gguf import GGUFReader
    r = GGUFReader(str(path))

    def field(name: str):
        f = r.fields[name]
        return [f.parts[i] for i in f.data]

    tokens = [bytes(p).decode("utf-8") for p in field("tokenizer.ggml.tokens")]
    types = [int(p[0]) for p in field("tokenizer.ggml.token_type")]
    ends = set()
    for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"):
        if key in r.fields:
            ends.add(int(r.fields[key].parts[-1][0]))
    return tokens, types, ends


def expected_text(name: str) -> tuple[list[int], str, int]:
    e = json.loads((FIXTURES / name / "expected.json").read_text())
    tokens, types, ends = vocabulary(FIXTURES / name / "model-f32.gguf")
    table = byte_decoder()
    out = bytearray()
    count = 0
    for t in e["greedy_ids"]:
        if t in ends:
            break
        count += 1
        if types[t] == 3:  # control tokens print nothing
            continue
        out += bytes(table[c] for c in tokens[t])
    return e["prompt_ids"], out.decode("utf-8", errors="replace"), count


@pytest.fixture()
def workdir():
    d = Path(tempfile.mkdtemp(prefix="roost-serve-tf-"))
    os.chmod(d, 0o755)
    models = d / "models"
    models.mkdir()
    for name in CASES:
        (models / f"{name}.gguf").symlink_to(FIXTURES / name / "model-f32.gguf")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def complete(d: ts.Daemon, model: str, prompt, max_tokens: int, **kw) -> tuple[int, dict]:
    status, _, data = d.request("POST", "/v1/completions", {
        "model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, **kw})
    return status, json.loads(data)


def test_greedy_completions_equal_transformers(workdir):
    d = ts.Daemon(workdir, "--threads", "2")
    try:
        listed = {m["id"] for m in json.loads(d.request("GET", "/v1/models")[2])["data"]}
        assert set(CASES) <= listed
        for name in CASES:
            prompt, text, count = expected_text(name)
            status, r = complete(d, name, prompt, 32)
            assert status == 200, r
            choice = r["choices"][0]
            assert choice["text"] == text, name
            assert r["usage"]["completion_tokens"] == count, name
            assert r["usage"]["prompt_tokens"] == len(prompt)
    finally:
        assert d.stop() == 0, d.logtext()


def test_kv_cache_session_survives_a_restart_and_the_context_is_enforced(workdir):
    model = "qwen2"
    context = json.loads((FIXTURES / model / "expected.json").read_text())["config"]["max_position_embeddings"]
    d = ts.Daemon(workdir)
    status, _, data = d.request("POST", "/v1/sessions", {"model": model})
    assert status == 201, data
    sid = json.loads(data)["id"]
    first = d.request("POST", "/v1/chat/completions", {
        "model": model, "session": sid, "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 8, "temperature": 0})
    assert first[0] == 200, first[2]
    tokens1 = json.loads(d.request("GET", f"/v1/sessions/{sid}")[2])["tokens"]
    assert tokens1 > 8
    # A prompt longer than the context: 400 naming the limit, and the daemon goes on.
    status, r = complete(d, model, list(range(40, 40 + 10)) * (context // 10 + 1), 4)
    assert status == 400 and f"context holds {context}" in r["error"]["message"], r
    assert d.stop() == 0, d.logtext()

    d2 = ts.Daemon(workdir, name="d")
    try:
        second = d2.request("POST", "/v1/chat/completions", {
            "model": model, "session": sid, "messages": [{"role": "user", "content": "and again"}],
            "max_tokens": 8, "temperature": 0})
        assert second[0] == 200, second[2]
        info = json.loads(d2.request("GET", f"/v1/sessions/{sid}")[2])
        assert info["turns"] == 2 and info["tokens"] > tokens1 + 8
        # Generation stops with "length" when the context fills up.
        status, r = complete(d2, model, list(range(40, 40 + context - 3)), 10)
        assert status == 200, r
        assert r["choices"][0]["finish_reason"] == "length"
        assert r["usage"]["completion_tokens"] <= 4
    finally:
        assert d2.stop() == 0, d2.logtext()


def test_a_memory_budget_that_forces_the_expert_store_answers_as_without(workdir):
    """mixtral's file just over --memory-budget: its routed experts live in an expert store of
    about one layer's experts (the dense weights, the working memory and one layer's experts
    fit, the whole file does not), and the greedy completion is the one without a budget
    (transformers' own). With the default shape (8 sequences, chunks of 64) the working memory
    leaves no room: the load is refused with a 503."""
    model = "mixtral"
    prompt, text, count = expected_text(model)
    size = (FIXTURES / model / "model-f32.gguf").stat().st_size
    d = ts.Daemon(workdir, "--threads", "2", name="free")
    try:
        status, free = complete(d, model, prompt, 32)
        assert status == 200, free
        stats = json.loads(d.request("GET", "/roost/v1/stats")[2])
        assert "experts" not in next(m for m in stats["models"] if m["name"] == model)
    finally:
        assert d.stop() == 0, d.logtext()
    assert free["choices"][0]["text"] == text

    d = ts.Daemon(workdir, "--threads", "2", "--memory-budget", f"{size - 4096}B", name="wide")
    try:
        status, r = complete(d, model, prompt, 4)
        assert status == 503 and r["error"]["code"] == "memory_budget", r
    finally:
        assert d.stop() == 0, d.logtext()

    # One sequence with prompt chunks of 8 tokens keeps the working memory small enough that
    # the dense weights, it and one layer's experts fit under the file's size.
    d = ts.Daemon(workdir, "--threads", "2", "--max-sessions", "1", "--prefill-chunk", "8",
                  "--memory-budget", f"{size - 4096}B", name="budget")
    try:
        status, r = complete(d, model, prompt, 32)
        assert status == 200, r
        assert r["choices"][0]["text"] == text
        assert r["usage"]["completion_tokens"] == count
        stats = json.loads(d.request("GET", "/roost/v1/stats")[2])
        e = next(m for m in stats["models"] if m["name"] == model)["experts"]
        assert e["slots"] >= 8 and e["pool_bytes"] == e["slots"] * e["slot_bytes"], e
        assert e["pool_bytes"] <= e["budget_bytes"] < size
        t = e["total"]
        assert t["misses"] > 0 and t["bytes_read"] > 0 and e["tokens"] >= len(prompt) + count - 1, e
        assert 0 < t["resident_bytes"] <= e["pool_bytes"]
        assert [layer["layer"] for layer in e["layers"]] == [0, 1]
        assert sum(layer["misses"] for layer in e["layers"]) == t["misses"]
        metrics = d.request("GET", "/metrics")[2].decode()
        misses = [line for line in metrics.splitlines() if line.startswith("roost_expert_misses_total{")]
        assert len(misses) == 2 and all('model="mixtral"' in line for line in misses), misses
        assert sum(float(line.split()[-1]) for line in misses) == t["misses"]
        roost = os.environ.get("ROOST")  # set by make test-python
        if roost:
            out = subprocess.run([roost, "stats", "--layers", "--socket", d.sock], capture_output=True, text=True,
                                 timeout=30)
            assert out.returncode == 0, out.stderr
            assert "experts of mixtral: resident" in out.stdout and "hit rate" in out.stdout, out.stdout
            assert "LAYER" in out.stdout and "MISSES" in out.stdout, out.stdout
            out = subprocess.run([roost, "stats", "--json", "--socket", d.sock], capture_output=True, text=True,
                                 timeout=30)
            shown = next(m for m in json.loads(out.stdout)["models"] if m["name"] == model)
            assert shown["experts"]["total"]["misses"] >= t["misses"]
    finally:
        assert d.stop() == 0, d.logtext()


def test_a_model_file_truncated_or_replaced_under_the_daemon_fails_requests_cleanly(workdir):
    """The file of a loaded model changes: the next request gets a 503 naming the file and the
    change (never a crash from reading a truncated mapping), /health stays ok, a file that
    cannot be loaded is reported as such, and a valid file put back is served again."""
    model = "llama"
    prompt, text, _ = expected_text(model)
    path = workdir / "models" / f"{model}.gguf"
    path.unlink()
    original = (FIXTURES / model / "model-f32.gguf").read_bytes()
    path.write_bytes(original)
    d = ts.Daemon(workdir, "--threads", "2")
    try:
        status, r = complete(d, model, prompt, 32)
        assert status == 200 and r["choices"][0]["text"] == text, r

        with open(path, "r+b") as f:  # truncated in place, under the mapping
            f.truncate(len(original) // 2)
        status, r = complete(d, model, prompt, 32)
        assert status == 503, r
        assert r["error"]["code"] == "model_file_changed", r
        assert str(path) in r["error"]["message"] and f"size {len(original)} -> {len(original) // 2} bytes" in r["error"]["message"]
        assert d.request("GET", "/health")[0] == 200
        # The truncated file itself: a load error naming it.
        status, r = complete(d, model, prompt, 32)
        assert status == 500 and r["error"]["code"] == "model_unavailable", r
        stats = json.loads(d.request("GET", "/roost/v1/stats")[2])
        entry = next(m for m in stats["models"] if m["name"] == model)
        assert not entry["loaded"] and entry["error"], entry

        # A valid file put back (a new file renamed over it): served again, the same answer.
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(original)
        os.rename(tmp, path)
        status, r = complete(d, model, prompt, 32)
        assert status == 200 and r["choices"][0]["text"] == text, r

        # Replaced by another valid model while loaded: one 503, then the new model answers.
        tmp.write_bytes((FIXTURES / "qwen2" / "model-f32.gguf").read_bytes())
        os.rename(tmp, path)
        status, r = complete(d, model, prompt, 32)
        assert status == 503 and "replaced" in r["error"]["message"], r
        qprompt, qtext, _ = expected_text("qwen2")
        status, r = complete(d, model, qprompt, 32)
        assert status == 200 and r["choices"][0]["text"] == qtext, r
        assert d.request("GET", "/health")[0] == 200
    finally:
        assert d.stop() == 0, d.logtext()


def test_kv_cache_types_and_a_session_made_with_another_type(workdir):
    # An exact (F32) KV cache: the greedy continuations are transformers' own.
    d = ts.Daemon(workdir, "--threads", "2", "--kv-cache", "f32")
    try:
        for name in ["llama", "qwen2", "qwen3moe"]:
            prompt, text, count = expected_text(name)
            status, r = complete(d, name, prompt, 32)
            assert status == 200, r
            assert r["choices"][0]["text"] == text, name
    finally:
        assert d.stop() == 0, d.logtext()
    # A session made with a Q8_0 cache (qwen3moe: heads of 32), continued by a daemon keeping
    # F16: refused with a
    # message naming both types; the daemon goes on and a new session works.
    d = ts.Daemon(workdir, "--kv-cache", "q8_0", name="q")
    # qwen2's heads (16) cannot be kept in Q8_0 blocks of 32: it falls back to F16 and answers
    # as with F16 (transformers' text).
    prompt, text, _ = expected_text("qwen2")
    status, r = complete(d, "qwen2", prompt, 32)
    assert status == 200 and r["choices"][0]["text"] == text, r
    assert "using f16" in d.logtext()
    status, _, data = d.request("POST", "/v1/sessions", {"model": "qwen3moe"})
    assert status == 201, data
    sid = json.loads(data)["id"]
    first = d.request("POST", "/v1/chat/completions", {
        "model": "qwen3moe", "session": sid, "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 4, "temperature": 0})
    assert first[0] == 200, first[2]
    assert d.stop() == 0, d.logtext()
    d = ts.Daemon(workdir, name="f")
    try:
        again = d.request("POST", "/v1/chat/completions", {
            "model": "qwen3moe", "session": sid, "messages": [{"role": "user", "content": "and again"}],
            "max_tokens": 4, "temperature": 0})
        assert again[0] == 400 and json.loads(again[2])["error"]["code"] == "bad_session", again
        message = json.loads(again[2])["error"]["message"]
        assert "q8_0" in message and "f16" in message, message
        assert d.request("GET", "/health")[0] == 200
        status, r = complete(d, "qwen2", expected_text("qwen2")[0], 2)
        assert status == 200, r
    finally:
        assert d.stop() == 0, d.logtext()
    # A cache type the daemon does not know: it does not start, and says why.
    bad = subprocess.run([ts.ROOSTD, "serve", "--socket", str(workdir / "x.sock"), "--kv-cache", "q4"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "kv-cache: 'q4' is not one of f16, q8_0, f32" in bad.stderr, bad.stderr
