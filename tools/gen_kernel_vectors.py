#!/usr/bin/env python3
"""Oracle test vectors for the C kernels (Sources/CKernels), made with gguf-py.

For every weight type: block bytes and the floats gguf-py's `gguf.quants.dequantize`
makes of them; for the Q8_0 activation format: input floats and the bytes gguf-py's
`gguf.quants.quantize` makes of them. The Swift tests in Tests/CKernelsTests compare
every kernel path's dequantize / quantize with these, bit for bit.

    tools/gen_kernel_vectors.py [--out DIR]   write the vectors and manifest.json
    tools/gen_kernel_vectors.py --check       regenerate in memory, compare with DIR

Everything is deterministic (seeded numpy Generator), so `--check` passes as long as
gguf-py and numpy compute the same values. `make fixtures` runs this with the venv.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "Tests" / "Fixtures" / "kernels"
SEED = 0x5EED_2025
MANIFEST = "manifest.json"

LEGACY = [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]
KQUANTS = [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]
FLOATS = [Q.F16, Q.BF16]

LEGACY_BLOCKS = 16   # 12 quantized from the input floats + 4 random valid blocks
K_BLOCKS = 8         # super-blocks of 256
FLOAT_ELEMENTS = 512  # 384 converted from the input floats + 128 random bit patterns
ACT_BLOCKS = 16

# Byte offsets of the fp16 scale fields (d, and dmin / m where the format has one)
# inside one block, as ggml lays the blocks out.
HALF_FIELDS: dict[Q, tuple[int, ...]] = {
    Q.Q4_0: (0,),
    Q.Q4_1: (0, 2),
    Q.Q5_0: (0,),
    Q.Q5_1: (0, 2),
    Q.Q8_0: (0,),
    Q.Q2_K: (80, 82),
    Q.Q3_K: (108,),
    Q.Q4_K: (0, 2),
    Q.Q5_K: (0, 2),
    Q.Q6_K: (208,),
}


def gguf_version() -> str:
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # pragma: no cover
        return "unknown"


def can_quantize(qtype: Q) -> bool:
    """Whether gguf-py implements quantization (not only dequantization) for qtype."""
    try:
        gguf.quants.quantize(np.zeros((1, gguf.GGML_QUANT_SIZES[qtype][0]), dtype=np.float32), qtype)
        return True
    except NotImplementedError:
        return False


def mixed_floats(rng: np.random.Generator, n_blocks: int, block_size: int) -> np.ndarray:
    """n_blocks blocks of mixed scales: normal values at several magnitudes, a block of
    zeros, a block with one large outlier, tiny values (fp16-subnormal scales and scales
    that round to zero in fp16), a constant block, an all-positive block and a block
    with exact rounding ties for Q8_0."""
    x = np.empty((n_blocks, block_size), dtype=np.float32)
    kinds = ["normal", "zeros", "outlier", "tiny", "tinier", "constant", "positive", "ties"]
    for b in range(n_blocks):
        kind = kinds[b] if b < len(kinds) else "normal"
        if kind == "normal":
            scale = (0.02, 1.0, 30.0)[b % 3]
            x[b] = rng.standard_normal(block_size) * scale
        elif kind == "zeros":
            x[b] = 0.0
        elif kind == "outlier":
            x[b] = rng.standard_normal(block_size) * 0.1
            x[b, rng.integers(block_size)] = 1000.0 if b % 2 == 0 else -1000.0
        elif kind == "tiny":
            x[b] = rng.standard_normal(block_size) * 1e-5  # fp16-subnormal block scales
        elif kind == "tinier":
            x[b] = rng.standard_normal(block_size) * 1e-9  # block scales round to 0 in fp16
        elif kind == "constant":
            x[b] = -0.75
        elif kind == "positive":
            x[b] = rng.uniform(0.5, 2.0, block_size)
        elif kind == "ties":
            # amax 127 -> d = 1, id = 1: x * id lands exactly on k + 0.5 (round half away from zero)
            t = rng.integers(-126, 126, block_size).astype(np.float32) + 0.5
            t[0] = 127.0
            t[1] = -0.5
            t[2] = 0.5
            x[b] = t
    return x


def random_valid_blocks(rng: np.random.Generator, qtype: Q, n_blocks: int) -> np.ndarray:
    """Random block bytes whose fp16 scale fields are finite, with mixed magnitudes:
    normal, small, zero, fp16-subnormal, large, negative."""
    type_size = gguf.GGML_QUANT_SIZES[qtype][1]
    blocks = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    magnitudes = [0.02, 0.002, 0.0, 3e-6, 1.5, -0.01, 60.0, 0.05]
    for b in range(n_blocks):
        for k, off in enumerate(HALF_FIELDS[qtype]):
            m = magnitudes[(b + 3 * k) % len(magnitudes)]
            v = np.float16(m * (1.0 + 0.25 * rng.random()))
            assert np.isfinite(v)
            blocks[b, off:off + 2] = np.frombuffer(v.tobytes(), dtype=np.uint8)
    return blocks


def float_blocks(rng: np.random.Generator, qtype: Q) -> tuple[np.ndarray, str]:
    n_conv = FLOAT_ELEMENTS - 128
    x = mixed_floats(rng, n_conv // 32, 32).reshape(-1)
    # special values: signed zeros, infinities, NaN, fp16 overflow / subnormal / underflow
    x[:12] = [0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 70000.0, -1e5, 6e-8, 1e-9, 3.0e38, -1.17549435e-38]
    with np.errstate(over="ignore", invalid="ignore"):  # the overflows to inf are intended
        conv = np.asarray(gguf.quants.quantize(x, qtype)).view(np.uint8).reshape(-1)
    bits = rng.integers(0, 1 << 16, 128, dtype=np.uint16).view(np.uint8)
    return np.concatenate([conv, bits]), (
        f"gguf.quants.quantize of {n_conv} input floats (incl. +-0, +-inf, NaN, overflow, "
        f"subnormals) + 128 random 16-bit patterns")


def weight_vectors(rng: np.random.Generator, qtype: Q, notes: list[str]) -> tuple[np.ndarray, str]:
    """Block bytes for one weight type and a description of where they come from."""
    if qtype in FLOATS:
        return float_blocks(rng, qtype)
    block_size = gguf.GGML_QUANT_SIZES[qtype][0]
    if qtype in LEGACY:
        n_rand = 4
        x = mixed_floats(rng, LEGACY_BLOCKS - n_rand, block_size)
        q = np.asarray(gguf.quants.quantize(x, qtype), dtype=np.uint8).reshape(LEGACY_BLOCKS - n_rand, -1)
        r = random_valid_blocks(rng, qtype, n_rand)
        return np.concatenate([q, r]).reshape(-1), (
            f"gguf.quants.quantize of {LEGACY_BLOCKS - n_rand} blocks of mixed input floats "
            f"+ {n_rand} random valid blocks")
    if can_quantize(qtype):
        x = mixed_floats(rng, K_BLOCKS, block_size)
        q = np.asarray(gguf.quants.quantize(x, qtype), dtype=np.uint8)
        return q.reshape(-1), f"gguf.quants.quantize of {K_BLOCKS} blocks of mixed input floats"
    notes.append(f"gguf {gguf_version()} cannot quantize {qtype.name}: random valid blocks used")
    return random_valid_blocks(rng, qtype, K_BLOCKS).reshape(-1), (
        f"{K_BLOCKS} random valid blocks (gguf-py {gguf_version()} has no {qtype.name} quantizer; "
        f"fp16 scale fields set to finite values of mixed magnitude)")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def generate() -> tuple[dict[str, bytes], list[str]]:
    """All files (name -> bytes), manifest.json included, and notes on gguf-py's limits."""
    rng = np.random.default_rng(SEED)
    files: dict[str, bytes] = {}
    notes: list[str] = []
    version = gguf_version()
    dequant = []
    for qtype in LEGACY + KQUANTS + FLOATS:
        blocks, source = weight_vectors(rng, qtype, notes)
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        assert blocks.dtype == np.uint8 and blocks.size % type_size == 0
        n_elements = blocks.size // type_size * block_size
        expected = np.asarray(gguf.quants.dequantize(blocks, qtype), dtype=np.float32).reshape(-1)
        assert expected.size == n_elements, (qtype.name, expected.size, n_elements)
        name = qtype.name.lower()
        bfile, efile = f"dequant_{name}.blocks.bin", f"dequant_{name}.f32.bin"
        files[bfile] = blocks.tobytes()
        files[efile] = expected.astype("<f4").tobytes()
        dequant.append({
            "type": qtype.name, "ggml_type": int(qtype), "n_elements": int(n_elements),
            "block_size": int(block_size), "type_size": int(type_size),
            "blocks_file": bfile, "blocks_sha256": sha256(files[bfile]),
            "expected_file": efile, "expected_sha256": sha256(files[efile]),
            "source": source, "gguf_version": version,
        })

    # Q8_0 activation quantization: input floats -> gguf-py's Q8_0 blocks.
    x = mixed_floats(rng, ACT_BLOCKS, 32)
    act = np.asarray(gguf.quants.quantize(x, Q.Q8_0), dtype=np.uint8).reshape(-1)
    ifile, qfile = "quant_q8_0.input.f32.bin", "quant_q8_0.blocks.bin"
    files[ifile] = x.astype("<f4").tobytes()
    files[qfile] = act.tobytes()
    quant = [{
        "type": "Q8_0", "ggml_type": int(Q.Q8_0), "n_elements": int(x.size),
        "input_file": ifile, "input_sha256": sha256(files[ifile]),
        "expected_file": qfile, "expected_sha256": sha256(files[qfile]),
        "source": f"gguf.quants.quantize of {ACT_BLOCKS} blocks of mixed input floats (incl. exact .5 ties)",
        "gguf_version": version,
    }]

    manifest = {
        "generator": "tools/gen_kernel_vectors.py",
        "regenerate": "make fixtures",
        "gguf_version": version,
        "seed": SEED,
        "byte_order": "little-endian; floats are IEEE binary32",
        "notes": notes,
        "dequantize": dequant,
        "quantize": quant,
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files, notes


def check(out: Path, files: dict[str, bytes]) -> list[str]:
    problems = []
    for name, data in sorted(files.items()):
        path = out / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        on_disk = path.read_bytes()
        if on_disk != data:
            problems.append(f"{path}: differs from what gguf-py makes now "
                            f"({len(on_disk)} bytes on disk, sha256 {sha256(on_disk)[:16]}; "
                            f"regenerated {len(data)} bytes, sha256 {sha256(data)[:16]})")
    if out.is_dir():
        known = set(files) | {"README.md"}
        for path in sorted(out.iterdir()):
            if path.name not in known:
                problems.append(f"{path}: not made by the generator (stale file?)")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixture directory (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate in memory and compare with the files in --out; exit 1 on any difference")
    args = ap.parse_args(argv)
    files, notes = generate()
    if args.check:
        problems = check(args.out, files)
        if problems:
            print(f"gen_kernel_vectors --check: {len(problems)} problem(s) in {args.out}:", file=sys.stderr)
            for p in problems:
                print(f"  {p}", file=sys.stderr)
            print("Regenerate with `make fixtures` if the change is intended.", file=sys.stderr)
            return 1
        print(f"gen_kernel_vectors --check: {len(files)} files in {args.out} match gguf {gguf_version()}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    total = sum(len(d) for d in files.values())
    print(f"wrote {len(files)} files ({total} bytes) to {args.out}")
    for n in notes:
        print(f"note: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
