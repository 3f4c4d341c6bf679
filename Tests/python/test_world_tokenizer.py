"""Python side of the RWKV World tokenizer check (the Swift side is
Tests/TokenizersTests/WorldTokenizerOracleTests.swift, which runs tools/gen_world_tokenizer_vectors.py).

Checks that the GGUF token strings our tools write are what llama.cpp's converter writes and unescape
(with llama.cpp's llama_unescape_rwkv_token rules) to exactly the reference vocabulary, and that the
vector generator is deterministic. Skipped without the `rwkv` package, except under CI=true.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import world_vocab_to_gguf_tokens as wv  # noqa: E402

try:
    wv.rwkv_package_dir()
    HAVE_RWKV = True
except wv.MissingRwkvPackage:
    HAVE_RWKV = False
pytestmark = pytest.mark.skipif(not HAVE_RWKV and os.environ.get("CI") != "true",
                                reason="the rwkv package is not installed (tools/requirements.txt)")


def llama_unescape_rwkv_token(escaped: str) -> bytes:
    """llama.cpp's rules: \\t \\n \\r, \\xHH, backslash + any other character is that character."""
    out = bytearray()
    raw = escaped.encode("utf-8")
    i = 0
    while i < len(raw):
        c = raw[i]
        if c != 0x5C:
            out.append(c)
            i += 1
            continue
        e = raw[i + 1]
        if e == ord("x"):
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
            continue
        out.append({ord("t"): 9, ord("n"): 10, ord("r"): 13}.get(e, e))
        i += 2
    return bytes(out)


def test_gguf_tokens_unescape_to_the_reference_vocabulary():
    ref = wv.load_reference_tokenizer()
    texts, types, raw = wv.gguf_tokens()
    assert len(texts) == len(types) == len(raw) == 65536
    assert texts[0] == "<s>" and types[0] == wv.TOKEN_TYPE_CONTROL
    assert len(ref.idx2token) == 65529
    for i, b in ref.idx2token.items():
        assert types[i] == wv.TOKEN_TYPE_NORMAL
        assert texts[i] == repr(b)[2:-1]
        assert llama_unescape_rwkv_token(texts[i]) == b, i
    assert all(t == wv.TOKEN_TYPE_UNUSED for t in types[65530:])
    # every single byte is a token, so any input encodes
    assert {b for b in ref.idx2token.values() if len(b) == 1} == {bytes([i]) for i in range(256)}


def test_written_gguf_reads_back(tmp_path):
    import gguf

    path = tmp_path / "world.gguf"
    assert subprocess.run([sys.executable, str(REPO / "tools/world_vocab_to_gguf_tokens.py"), str(path)]).returncode == 0
    r = gguf.GGUFReader(str(path))
    f = r.fields["tokenizer.ggml.model"]
    assert bytes(f.parts[-1]).decode() == "rwkv"
    f = r.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    f = r.fields["tokenizer.ggml.token_type"]
    types = [int(f.parts[i][0]) for i in f.data]
    texts, want_types, _ = wv.gguf_tokens()
    assert tokens == texts and types == want_types
    assert len(r.tensors) == 0


def test_vector_generator_is_deterministic(tmp_path):
    outs = []
    for name in ("a", "b"):
        d = tmp_path / name
        cmd = [sys.executable, str(REPO / "tools/gen_world_tokenizer_vectors.py"), "--out", str(d), "--size", "50000"]
        assert subprocess.run(cmd, capture_output=True).returncode == 0
        outs.append({p.name: p.read_bytes() for p in d.iterdir()})
    assert outs[0] == outs[1]
    corpus = outs[0]["corpus.bin"]
    assert len(corpus) >= 50000 and set(corpus) == set(range(256))
    assert len(outs[0]["corpus.ids"]) % 4 == 0
    outs[0]["valid.bin"].decode("utf-8")
