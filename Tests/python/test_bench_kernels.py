"""`roostd bench-kernels`: the JSON report's shape and arithmetic, and its input errors.

Speed itself is not tested here (benchmarks are not timed tests); this checks that the
report is complete and self-consistent on a tiny run. Run by `make test-python`.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

ROOSTD = os.environ.get("ROOSTD")
pytestmark = pytest.mark.skipif(not ROOSTD, reason="ROOSTD (path to roostd) is not set; run via make test-python")

ALL_TYPES = ["f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K"]
TINY = ["--rows", "64", "--cols", "512", "--seconds", "0.01", "--working-set-mib", "1"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ROOSTD, "bench-kernels", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_json_report_is_complete_and_consistent() -> None:
    p = run("--json", "--threads", "1,2", *TINY)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["rows"] == 64 and r["cols"] == 512
    assert r["path"] in ("ref", "avx2", "avx512", "neon")
    assert r["working_set_bytes"] == 1 << 20
    bw = {b["threads"]: b for b in r["bandwidth"]}
    assert sorted(bw) == [1, 2]
    for b in bw.values():
        assert b["bytes_per_second"] == max(b["before_bytes_per_second"], b["after_bytes_per_second"]) > 0
    seen = {(x["type"], x["threads"]) for x in r["results"]}
    assert seen == {(t, n) for t in ALL_TYPES for n in (1, 2)}
    for x in r["results"]:
        row_bytes = {"f32": 2048, "f16": 1024, "bf16": 1024, "q4_0": 288, "q4_1": 320, "q5_0": 352,
                     "q5_1": 384, "q8_0": 544, "q2_K": 168, "q3_K": 220, "q4_K": 288, "q5_K": 352,
                     "q6_K": 420}[x["type"]]
        assert x["matrix_bytes"] == 64 * row_bytes
        assert x["bytes_per_second"] == pytest.approx(x["matrix_bytes"] / x["seconds_per_matvec"], rel=1e-6)
        expect = x["bytes_per_second"] / bw[x["threads"]]["bytes_per_second"]
        assert x["fraction_of_bandwidth"] == pytest.approx(expect, abs=1e-3)


def test_forced_ref_path_reports_ref_kernels() -> None:
    p = run("--json", "--threads", "1", "--types", "q8_0,q4_K", *TINY, env={"ROOST_KERNELS": "ref"})
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["path"] == "ref"
    assert [x["type"] for x in r["results"]] == ["q8_0", "q4_K"]
    assert all(x["native_kernel"] for x in r["results"])


def test_text_report_has_the_table() -> None:
    p = run("--threads", "1", "--types", "q4_0", *TINY)
    assert p.returncode == 0, p.stderr
    assert "memory read bandwidth: 1 thread" in p.stdout
    assert "of bandwidth" in p.stdout and "q4_0" in p.stdout


@pytest.mark.parametrize("args, message", [
    (["--types", "q9_9"], "unknown type 'q9_9'"),
    (["--types", "q4_K", "--cols", "96"], "not a multiple of q4_K's block size 256"),
    (["--threads", "0"], "not a thread count"),
    (["--path", "sparc"], "unknown kernel path 'sparc'"),
    (["--seconds=0"], "--seconds must be"),
])
def test_bad_arguments_are_refused(args: list[str], message: str) -> None:
    p = run(*args)
    assert p.returncode != 0
    assert message in p.stderr


def test_unknown_roost_kernels_value_is_refused() -> None:
    p = run("--threads", "1", *TINY, env={"ROOST_KERNELS": "sparc"})
    assert p.returncode != 0
    assert "sparc" in p.stderr
