"""The committed kernel vectors (Tests/Fixtures/kernels) are reproducible from gguf-py.

Runs tools/gen_kernel_vectors.py --check, which regenerates every file in memory with the
pinned gguf-py and compares it byte for byte with what is committed.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GEN = REPO / "tools" / "gen_kernel_vectors.py"
FIXTURES = REPO / "Tests" / "Fixtures" / "kernels"


def run_gen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GEN), *args], capture_output=True, text=True, timeout=300)


def test_committed_vectors_match_gguf_py():
    out = run_gen("--check", "--out", str(FIXTURES))
    assert out.returncode == 0, f"committed kernel vectors are stale:\n{out.stderr}"


def test_check_reports_a_changed_file(tmp_path):
    out = run_gen("--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert run_gen("--check", "--out", str(tmp_path)).returncode == 0
    victim = tmp_path / "dequant_q4_0.f32.bin"
    data = bytearray(victim.read_bytes())
    data[5] ^= 1
    victim.write_bytes(bytes(data))
    (tmp_path / "quant_q8_0.blocks.bin").unlink()
    out = run_gen("--check", "--out", str(tmp_path))
    assert out.returncode == 1
    assert "dequant_q4_0.f32.bin: differs" in out.stderr
    assert "quant_q8_0.blocks.bin: missing" in out.stderr


def test_manifest_lists_every_file_with_its_hash():
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    types = [e["type"] for e in manifest["dequantize"]]
    assert types == ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16"]
    assert [e["type"] for e in manifest["quantize"]] == ["Q8_0"]
    total = 0
    for e in manifest["dequantize"] + manifest["quantize"]:
        for key in ("blocks", "expected", "input"):
            if f"{key}_file" in e:
                data = (FIXTURES / e[f"{key}_file"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == e[f"{key}_sha256"], e[f"{key}_file"]
                total += len(data)
    assert total < 400_000
