#!/usr/bin/env python3
"""Write random-weight GGUF models at given shapes, in llama.cpp's tensor layout.

The weights are random (normal, std 0.02, fixed seed): these files exercise the loader,
the kernels and the benchmarks at realistic sizes; they do not produce meaningful text.

Presets:
  demo-moe   a small OLMoE-shaped Mixture-of-Experts model (4 layers, 8 experts, top-2)

Example:
  python tools/make_synthetic.py --preset demo-moe --type q8_0 --out /tmp/demo.gguf
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import quants

PRESETS = {
    "demo-moe": dict(arch="olmoe", n_layer=4, n_embd=256, n_head=4, n_head_kv=4, n_ff_exp=128,
                     n_expert=8, n_expert_used=2, n_vocab=512, n_ctx=2048),
}

TYPES = {"f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0,
         "q4_1": QT.Q4_1, "q5_0": QT.Q5_0, "q5_1": QT.Q5_1}

FILE_TYPE = {QT.F32: 0, QT.F16: 1, QT.Q4_0: 2, QT.Q4_1: 3, QT.Q8_0: 7, QT.Q5_0: 8, QT.Q5_1: 9,
             QT.BF16: 32}


class ModelWriter:
    def __init__(self, path: str, arch: str, qtype: QT, seed: int):
        self.w = gguf.GGUFWriter(path, arch)
        self.qtype = qtype
        self.rng = np.random.default_rng(seed)

    def norm(self, name: str, n: int) -> None:
        self.w.add_tensor(name, (1.0 + 0.01 * self.rng.standard_normal(n)).astype(np.float32))

    def matrix(self, name: str, shape_np: tuple[int, ...]) -> None:
        """A weight of numpy shape shape_np (ggml ne reversed), stored in the model's type."""
        data = (0.02 * self.rng.standard_normal(shape_np)).astype(np.float32)
        if self.qtype == QT.F32:
            self.w.add_tensor(name, data)
        elif self.qtype == QT.F16:
            self.w.add_tensor(name, data.astype(np.float16))
        else:
            q = quants.quantize(data, self.qtype)
            self.w.add_tensor(name, q, raw_dtype=self.qtype)

    def finish(self) -> None:
        self.w.write_header_to_file()
        self.w.write_kv_data_to_file()
        self.w.write_tensors_to_file(progress=False)
        self.w.close()


def byte_vocab(n_vocab: int) -> list[str]:
    toks = [f"<0x{i:02X}>" for i in range(256)]
    toks += [f"<tok{i}>" for i in range(256, n_vocab)]
    return toks


def write_moe(path: str, p: dict, qtype: QT, seed: int, name: str) -> None:
    arch = p["arch"]
    m = ModelWriter(path, arch, qtype, seed)
    w = m.w
    w.add_name(name)
    w.add_string("general.license", "CC0-1.0")
    w.add_string("general.source.description", "random weights written by tools/make_synthetic.py")
    w.add_uint32("general.file_type", FILE_TYPE[qtype])
    w.add_context_length(p["n_ctx"])
    w.add_embedding_length(p["n_embd"])
    w.add_block_count(p["n_layer"])
    w.add_feed_forward_length(p["n_ff_exp"])
    w.add_head_count(p["n_head"])
    w.add_head_count_kv(p["n_head_kv"])
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_expert_count(p["n_expert"])
    w.add_expert_used_count(p["n_expert_used"])
    w.add_tokenizer_model("gpt2")
    w.add_token_list(byte_vocab(p["n_vocab"]))
    w.add_token_types([1] * p["n_vocab"])

    E, F, C, V = p["n_expert"], p["n_ff_exp"], p["n_embd"], p["n_vocab"]
    hd = C // p["n_head"]
    m.matrix("token_embd.weight", (V, C))
    for i in range(p["n_layer"]):
        b = f"blk.{i}"
        m.norm(f"{b}.attn_norm.weight", C)
        m.matrix(f"{b}.attn_q.weight", (C, C))
        m.matrix(f"{b}.attn_k.weight", (p["n_head_kv"] * hd, C))
        m.matrix(f"{b}.attn_v.weight", (p["n_head_kv"] * hd, C))
        m.matrix(f"{b}.attn_output.weight", (C, C))
        m.norm(f"{b}.attn_q_norm.weight", C)
        m.norm(f"{b}.attn_k_norm.weight", p["n_head_kv"] * hd)
        m.norm(f"{b}.ffn_norm.weight", C)
        # router: ggml ne (C, E) -> numpy (E, C); kept in F32 as llama.cpp's converters do
        w.add_tensor(f"{b}.ffn_gate_inp.weight", (0.02 * m.rng.standard_normal((E, C))).astype(np.float32))
        # experts: ggml ne (C, F, E) -> numpy (E, F, C); down: ne (F, C, E) -> numpy (E, C, F)
        m.matrix(f"{b}.ffn_gate_exps.weight", (E, F, C))
        m.matrix(f"{b}.ffn_up_exps.weight", (E, F, C))
        m.matrix(f"{b}.ffn_down_exps.weight", (E, C, F))
    m.norm("output_norm.weight", C)
    m.matrix("output.weight", (V, C))
    m.finish()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--type", choices=sorted(TYPES), default="q8_0", help="type of the weight matrices")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="output .gguf path")
    args = ap.parse_args()

    p = PRESETS[args.preset]
    qtype = TYPES[args.type]
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    # Write to a temporary name in the same folder, then rename: never a half-written model.
    fd, tmp = tempfile.mkstemp(prefix=".synthetic-", suffix=".gguf", dir=out_dir)
    os.close(fd)
    try:
        write_moe(tmp, p, qtype, args.seed, f"synthetic {args.preset} {args.type}")
        os.replace(tmp, args.out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
