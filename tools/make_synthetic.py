#!/usr/bin/env python3
"""Write random-weight GGUF models at given shapes, in llama.cpp's tensor layout.

The weights are random (normal, std 0.02, fixed seed): these files exercise the loader,
the kernels and the benchmarks at realistic sizes; they do not produce meaningful text.

Presets:
  demo-moe    a small OLMoE-shaped Mixture-of-Experts model (4 layers, 8 experts, top-2)
  rwkv7-tiny  RWKV-7, 2 layers, C=256, F=1024, vocabulary 1024, LoRA ranks 32 (quick tests)
  rwkv7-0.1b  RWKV-7 "x070" 0.1B shape: 12 layers, C=768, 12 heads of 64, F=3072, vocab 65536
  rwkv7-0.4b  RWKV-7 0.4B shape: 24 layers, C=1024, 16 heads of 64, F=4096, vocab 65536
  rwkv6-1.6b  RWKV-6 "Finch" 1.6B shape: 24 layers, C=2048, 32 heads of 64, F=7168, vocab 65536
  qwen2-0.5b        dense qwen2 at the Qwen2-0.5B shape: 24 layers, C=896, 14 heads (2 KV) of 64,
                    F=4864, vocab 151936, tied embeddings, q/k/v biases
  olmoe-1b-7b       olmoe at the OLMoE-1B-7B shape: 16 layers, C=2048, 16 heads, 64 experts top-8,
                    expert F=1024, vocab 50304 (Q8_0 7.4 GB; F16 about 14 GB, Q4_0 about 4 GB)
  qwen3moe-30b-a3b  qwen3moe at the Qwen3-30B-A3B shape with 8 of its 48 layers: C=2048, 32 heads
                    (4 KV) of 128, 128 experts top-8, expert F=768, vocab 151936
  qwen2moe-a2.7b    qwen2moe at the Qwen1.5-MoE-A2.7B shape with 8 of its 24 layers: C=2048,
                    16 heads, 60 experts top-4, expert F=1408, shared expert F=5632, vocab 151936
  (--layers N overrides the layer count of any preset, e.g. for a quick load test.)

Transformer presets (qwen2, olmoe, qwen3moe, qwen2moe) write llama.cpp's tensor names and ggml
shapes as convert_hf_to_gguf.py does for those architectures (checked against the converted
fixtures in Tests/Fixtures/transformers/): 1-D tensors and the routers (ffn_gate_inp,
ffn_gate_inp_shexp) F32, every matrix in --type (F16, Q8_0, Q4_0 with gguf-py). --type q4_K
writes a Q8_0 file first and requantizes it with llama.cpp's own quantizer
(llama_cpp.llama_model_quantize, LLAMA_FTYPE_MOSTLY_Q4_K_S, from .venv-bench; random weights,
so requantizing from Q8_0 loses nothing that matters; rows that are not a multiple of 256, e.g.
all of qwen2-0.5b's 896-wide matrices, get llama.cpp's fallback type). --check loads the result
with llama.cpp and greedy-decodes 4 tokens. The tokenizer is a GPT-2-style byte-level
vocabulary: the 256 byte symbols, filler tokens up to the vocabulary size, `<|endoftext|>` last
(EOS, control) and ten merges (llama.cpp requires a merge list); text becomes mostly byte tokens.

RWKV files follow llama.cpp's rwkv6/rwkv7 layout (tensor names, ggml shapes, metadata) and the
tensor types llama.cpp's converter + quantizer would give: the big matrices (time_mix_{key,value,
receptance,output,gate}, channel_mix_*, token_embd, output) in --type; 1-D tensors, norms,
lerps, time_mix_first and the w1/w2/decay_w1/decay_w2 LoRAs in F32 (convert_hf_to_gguf keeps
them F32); the other LoRAs (a1/a2/v1/v2/g1/g2) in F16 (llama-quant.cpp never quantizes any
RWKV LoRA; --quantize-lora overrides that). q4_K blocks are random valid blocks written with
numpy (gguf-py cannot quantize K-quants). The vocabulary is the real RWKV World one when the
`rwkv` package is installed and the preset has 65536 tokens, else 256 byte tokens + fillers.
Tensors are generated and written one at a time (progress per layer on stderr).

Examples:
  python tools/make_synthetic.py --preset demo-moe --type q8_0 --out /tmp/demo.gguf
  python tools/make_synthetic.py --preset rwkv7-0.1b --type q4_K --out .run/rwkv7-0.1b-q4_K.gguf
  python tools/make_synthetic.py --preset olmoe-1b-7b --type q8_0 --out .run/olmoe-1b-7b-q8_0.gguf
  python tools/make_synthetic.py --preset qwen3moe-30b-a3b --type q4_K --out .run/qwen3moe-8l-q4_K.gguf
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Callable

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import quants

PRESETS = {
    "demo-moe": dict(arch="olmoe", n_layer=4, n_embd=256, n_head=4, n_head_kv=4, n_ff_exp=128,
                     n_expert=8, n_expert_used=2, n_vocab=512, n_ctx=2048),
    "rwkv7-tiny": dict(arch="rwkv7", n_layer=2, n_embd=256, head_size=64, n_ff=1024, n_vocab=1024,
                       lora_decay=32, lora_iclr=32, lora_value=32, lora_gate=32),
    "rwkv7-0.1b": dict(arch="rwkv7", n_layer=12, n_embd=768, head_size=64, n_ff=3072, n_vocab=65536,
                       lora_decay=64, lora_iclr=64, lora_value=32, lora_gate=128),
    "rwkv7-0.4b": dict(arch="rwkv7", n_layer=24, n_embd=1024, head_size=64, n_ff=4096, n_vocab=65536,
                       lora_decay=64, lora_iclr=64, lora_value=32, lora_gate=128),
    "rwkv6-1.6b": dict(arch="rwkv6", n_layer=24, n_embd=2048, head_size=64, n_ff=7168, n_vocab=65536,
                       mix_dim=32, decay_dim=64),
    "qwen2-0.5b": dict(arch="qwen2", n_layer=24, n_embd=896, n_head=14, n_head_kv=2, head_dim=64,
                       n_ff=4864, n_vocab=151936, n_ctx=32768, rope_theta=1000000.0, rms_eps=1e-6,
                       tied=True, qkv_bias=True, pre="qwen2"),
    "olmoe-1b-7b": dict(arch="olmoe", n_layer=16, n_embd=2048, n_head=16, n_head_kv=16, head_dim=128,
                        n_ff_exp=1024, n_expert=64, n_expert_used=8, n_vocab=50304, n_ctx=4096,
                        rope_theta=10000.0, rms_eps=1e-5, tied=False, qkv_bias=False, pre="olmo"),
    "qwen3moe-30b-a3b": dict(arch="qwen3moe", n_layer=8, n_embd=2048, n_head=32, n_head_kv=4, head_dim=128,
                             n_ff=6144, n_ff_exp=768, n_expert=128, n_expert_used=8, n_vocab=151936,
                             n_ctx=40960, rope_theta=1000000.0, rms_eps=1e-6, tied=False, qkv_bias=False,
                             pre="qwen2"),
    "qwen2moe-a2.7b": dict(arch="qwen2moe", n_layer=8, n_embd=2048, n_head=16, n_head_kv=16, head_dim=128,
                           n_ff=5632, n_ff_exp=1408, n_ff_shexp=5632, n_expert=60, n_expert_used=4,
                           n_vocab=151936, n_ctx=8192, rope_theta=1000000.0, rms_eps=1e-6, tied=False,
                           qkv_bias=True, pre="qwen2"),
}

TRANSFORMER_ARCHS = ("qwen2", "olmoe", "qwen3moe", "qwen2moe")

TYPES = {"f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0,
         "q4_1": QT.Q4_1, "q5_0": QT.Q5_0, "q5_1": QT.Q5_1, "q4_K": QT.Q4_K}

FILE_TYPE = {QT.F32: 0, QT.F16: 1, QT.Q4_0: 2, QT.Q4_1: 3, QT.Q8_0: 7, QT.Q5_0: 8, QT.Q5_1: 9,
             QT.BF16: 32, QT.Q4_K: 14}  # 14 = MOSTLY_Q4_K_S: every big matrix Q4_K


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


# ---- RWKV (rwkv6 / rwkv7, llama.cpp's layout), written one tensor at a time -----------------

RWKV_CONTEXT_LENGTH = 1048576  # what convert_hf_to_gguf.py records: RWKV has no context limit
TOKEN_TYPE_NORMAL, TOKEN_TYPE_UNUSED = 1, 5
CHUNK_ELEMS = 1 << 22  # rows are generated and converted about 4M values at a time


class TensorSpec:
    """One tensor: ggml shape `ne` (ne0 first), stored type, and how to draw its values.

    dist is ("normal", mean, std) or ("uniform", lo, hi)."""

    def __init__(self, name: str, ne: tuple[int, ...], qtype: QT, dist: tuple):
        self.name, self.ne, self.qtype, self.dist = name, tuple(int(x) for x in ne), qtype, dist

    @property
    def np_shape(self) -> tuple[int, ...]:
        return tuple(reversed(self.ne))

    @property
    def nbytes(self) -> int:
        blk, size = gguf.GGML_QUANT_SIZES[self.qtype]
        n = int(np.prod(self.ne))
        assert self.ne[0] % blk == 0, (self.name, self.ne, self.qtype)
        return n // blk * size


def _draw(rng: np.random.Generator, dist: tuple, shape: tuple[int, ...]) -> np.ndarray:
    kind, a, b = dist
    if kind == "normal":
        x = rng.standard_normal(shape, dtype=np.float32)
        x *= np.float32(b)
        if a:
            x += np.float32(a)
        return x
    assert kind == "uniform"
    return rng.uniform(a, b, shape).astype(np.float32)


def q4_k_random_blocks(rng: np.random.Generator, n_blocks: int, std: float) -> np.ndarray:
    """Random valid Q4_K blocks (ggml's block_q4_K: fp16 d, fp16 dmin, scales[12], qs[128]).

    scales/mins (6-bit) and quants (4-bit) are random bytes; d and dmin are finite positive
    fp16 values chosen so the dequantized weights have about the requested std and a mean near 0
    (w = d*sc*q - dmin*m with sc, m uniform in 0..63 and q in 0..15: E = 236 d - 31.5 dmin,
    std ~ 257 d with dmin = 7.5 d, measured), so every weight type of a preset behaves alike."""
    d = (std / 257.0) * rng.uniform(0.7, 1.3, n_blocks)
    dmin = 7.5 * d * rng.uniform(0.9, 1.1, n_blocks)
    blocks = np.empty((n_blocks, 144), dtype=np.uint8)
    blocks[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(n_blocks, 2)
    blocks[:, 2:4] = dmin.astype("<f2").view(np.uint8).reshape(n_blocks, 2)
    blocks[:, 4:] = rng.integers(0, 256, (n_blocks, 140), dtype=np.uint8)
    return blocks


def materialize(spec: TensorSpec, rng: np.random.Generator) -> np.ndarray:
    """The tensor's bytes as an array (float32/float16 values, or uint8 blocks), row chunk by chunk."""
    shape = spec.np_shape
    qt = spec.qtype
    if qt == QT.F32:
        return _draw(rng, spec.dist, shape)
    ne0 = spec.ne[0]
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    if qt == QT.Q4_K:
        kind, mean, std = spec.dist
        assert kind == "normal" and mean == 0, f"{spec.name}: Q4_K only for zero-mean normal weights"
        return q4_k_random_blocks(rng, rows * ne0 // 256, std)
    step = max(1, CHUNK_ELEMS // ne0)
    if qt == QT.F16:
        out = np.empty((rows, ne0), dtype=np.float16)
        for a in range(0, rows, step):
            b = min(rows, a + step)
            out[a:b] = _draw(rng, spec.dist, (b - a, ne0))
        return out.reshape(shape)
    blk, size = gguf.GGML_QUANT_SIZES[qt]
    out = np.empty((rows, ne0 // blk * size), dtype=np.uint8)
    for a in range(0, rows, step):
        b = min(rows, a + step)
        out[a:b] = quants.quantize(_draw(rng, spec.dist, (b - a, ne0)), qt)
    return out


def _fits(qtype: QT, ne0: int) -> bool:
    return ne0 % gguf.GGML_QUANT_SIZES[qtype][0] == 0


def big_matrix_type(qtype: QT, ne0: int) -> QT:
    """llama-quant.cpp's tensor_type_fallback: Q4_K -> Q5_0 when ne0 % 256 != 0, else F16."""
    if _fits(qtype, ne0):
        return qtype
    if qtype == QT.Q4_K and _fits(QT.Q5_0, ne0):
        return QT.Q5_0
    return QT.F16


def rwkv_vocab(n_vocab: int) -> tuple[list[str], list[int], str]:
    """(token strings, token types, description): the RWKV World vocabulary as llama.cpp's converter
    writes it when the `rwkv` package is installed and n_vocab is 65536, else 256 byte tokens
    (`repr(bytes([i]))[2:-1]`, as rwkv.cpp's tiny models have) and `[PADi]` fillers."""
    if n_vocab >= 65536:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        try:
            import world_vocab_to_gguf_tokens as wv
            texts, types, _ = wv.gguf_tokens(n_vocab)
            return texts, types, "RWKV World (rwkv_vocab_v20230424)"
        except Exception as e:  # MissingRwkvPackage and friends: fall back to bytes
            print(f"note: no RWKV World vocabulary ({e}); writing byte tokens", file=sys.stderr)
        finally:
            sys.path.pop(0)
    texts = [repr(bytes([i]))[2:-1] for i in range(256)]
    types = [TOKEN_TYPE_NORMAL] * 256
    for i in range(256, n_vocab):
        texts.append(f"[PAD{i}]")
        types.append(TOKEN_TYPE_UNUSED)
    return texts, types, "256 byte tokens + fillers"


def rwkv_specs(p: dict, qtype: QT, quantize_lora: bool) -> list[tuple[int, TensorSpec]]:
    """(layer or -1, spec) for every tensor, in file order."""
    arch, C, F, V, L = p["arch"], p["n_embd"], p["n_ff"], p["n_vocab"], p["n_layer"]
    S = p["head_size"]
    H = C // S
    f32_vec = QT.F32
    lora16 = QT.F32 if qtype == QT.F32 else (QT.BF16 if qtype == QT.BF16 else QT.F16)

    def big(ne0: int) -> QT:
        return QT.F32 if qtype == QT.F32 else big_matrix_type(qtype, ne0)

    def lora(ne0: int, default: QT) -> QT:
        # llama.cpp: convert_hf_to_gguf keeps time_mix_{w1,w2,decay_w1,decay_w2} F32, writes the other
        # LoRAs in the output type (F16), and llama-quant.cpp never quantizes any of them.
        if qtype == QT.F32:
            return QT.F32
        if quantize_lora and _fits(qtype, ne0):
            return qtype
        return default

    def n(mean: float, std: float) -> tuple:
        return ("normal", mean, std)

    def u(lo: float, hi: float) -> tuple:
        return ("uniform", lo, hi)

    out: list[tuple[int, TensorSpec]] = []

    def add(layer: int, name: str, ne: tuple[int, ...], qt: QT, dist: tuple) -> None:
        out.append((layer, TensorSpec(name, ne, qt, dist)))

    def matrix(layer: int, name: str, n_in: int, n_out: int, std: float | None = None) -> None:
        add(layer, name, (n_in, n_out), big(n_in), n(0.0, std if std is not None else n_in ** -0.5))

    add(-1, "token_embd.weight", (C, V), big(C), n(0.0, 0.02))
    add(-1, "token_embd_norm.weight", (C,), f32_vec, n(1.0, 0.01))
    add(-1, "token_embd_norm.bias", (C,), f32_vec, n(0.0, 0.01))
    for i in range(L):
        b = f"blk.{i}"
        add(i, f"{b}.attn_norm.weight", (C,), f32_vec, n(1.0, 0.01))
        add(i, f"{b}.attn_norm.bias", (C,), f32_vec, n(0.0, 0.01))
        add(i, f"{b}.attn_norm_2.weight", (C,), f32_vec, n(1.0, 0.01))
        add(i, f"{b}.attn_norm_2.bias", (C,), f32_vec, n(0.0, 0.01))
        if arch == "rwkv7":
            rd, ra, rv, rg = p["lora_decay"], p["lora_iclr"], p["lora_value"], p["lora_gate"]
            add(i, f"{b}.time_mix_w0.weight", (C,), f32_vec, u(-5.0, -1.0))
            add(i, f"{b}.time_mix_w1.weight", (C, rd), lora(C, QT.F32), n(0.0, C ** -0.5))
            add(i, f"{b}.time_mix_w2.weight", (rd, C), lora(rd, QT.F32), n(0.0, 0.5 * rd ** -0.5))
            add(i, f"{b}.time_mix_a0.weight", (C,), f32_vec, u(-1.0, 1.0))
            add(i, f"{b}.time_mix_a1.weight", (C, ra), lora(C, lora16), n(0.0, C ** -0.5))
            add(i, f"{b}.time_mix_a2.weight", (ra, C), lora(ra, lora16), n(0.0, 0.5 * ra ** -0.5))
            # layer 0 carries v0/v1/v2 too, unused; llama.cpp's converter writes copies of a0/a1/a2
            # there, so its loader expects the iclr rank on layer 0
            r = ra if i == 0 else rv
            add(i, f"{b}.time_mix_v0.weight", (C,), f32_vec, u(-1.0, 1.0))
            add(i, f"{b}.time_mix_v1.weight", (C, r), lora(C, lora16), n(0.0, C ** -0.5))
            add(i, f"{b}.time_mix_v2.weight", (r, C), lora(r, lora16), n(0.0, 0.5 * r ** -0.5))
            add(i, f"{b}.time_mix_g1.weight", (C, rg), lora(C, lora16), n(0.0, C ** -0.5))
            add(i, f"{b}.time_mix_g2.weight", (rg, C), lora(rg, lora16), n(0.0, rg ** -0.5))
            add(i, f"{b}.time_mix_lerp_fused.weight", (C, 1, 1, 6), QT.F32, u(0.0, 1.0))  # r,w,k,v,a,g
            add(i, f"{b}.time_mix_k_k.weight", (C,), f32_vec, u(0.5, 1.0))
            add(i, f"{b}.time_mix_k_a.weight", (C,), f32_vec, u(0.8, 1.2))
            add(i, f"{b}.time_mix_r_k.weight", (C,), f32_vec, n(0.0, 0.3))
        else:
            D, D2 = p["mix_dim"], p["decay_dim"]
            add(i, f"{b}.time_mix_lerp_x.weight", (C, 1, 1), f32_vec, u(0.0, 1.0))
            add(i, f"{b}.time_mix_lerp_fused.weight", (C, 1, 1, 5), QT.F32, u(0.0, 1.0))  # w,k,v,r,g
            add(i, f"{b}.time_mix_w1.weight", (C, 5 * D), lora(C, QT.F32), n(0.0, C ** -0.5))
            add(i, f"{b}.time_mix_w2.weight", (D, C, 5), lora(D, QT.F32), n(0.0, 0.1 * D ** -0.5))
            add(i, f"{b}.time_mix_decay.weight", (C,), f32_vec, u(-6.0, -0.5))
            add(i, f"{b}.time_mix_decay_w1.weight", (C, D2), lora(C, QT.F32), n(0.0, C ** -0.5))
            add(i, f"{b}.time_mix_decay_w2.weight", (D2, C), lora(D2, QT.F32), n(0.0, 0.5 * D2 ** -0.5))
            add(i, f"{b}.time_mix_first.weight", (S, H), QT.F32, u(0.0, 1.0))
            matrix(i, f"{b}.time_mix_gate.weight", C, C)
        matrix(i, f"{b}.time_mix_key.weight", C, C)
        matrix(i, f"{b}.time_mix_value.weight", C, C)
        matrix(i, f"{b}.time_mix_receptance.weight", C, C)
        add(i, f"{b}.time_mix_ln.weight", (C,), f32_vec, n(1.0, 0.01))
        add(i, f"{b}.time_mix_ln.bias", (C,), f32_vec, n(0.0, 0.01))
        matrix(i, f"{b}.time_mix_output.weight", C, C)
        add(i, f"{b}.channel_mix_lerp_k.weight", (C, 1, 1), f32_vec, u(0.0, 1.0))
        if arch == "rwkv6":
            add(i, f"{b}.channel_mix_lerp_r.weight", (C, 1, 1), f32_vec, u(0.0, 1.0))
            matrix(i, f"{b}.channel_mix_receptance.weight", C, C)
        matrix(i, f"{b}.channel_mix_key.weight", C, F)
        matrix(i, f"{b}.channel_mix_value.weight", F, C)
    add(-1, "output_norm.weight", (C,), f32_vec, n(1.0, 0.01))
    add(-1, "output_norm.bias", (C,), f32_vec, n(0.0, 0.01))
    matrix(-1, "output.weight", C, V)
    return out


def write_rwkv(path: str, p: dict, qtype: QT, seed: int, name: str, quantize_lora: bool = False, *,
               specs: list[tuple[int, TensorSpec]] | None = None,
               data: Callable[[TensorSpec], np.ndarray] | None = None,
               license: str = "CC0-1.0",
               description: str = "random weights written by tools/make_synthetic.py",
               extra_strings: dict[str, str] | None = None) -> None:
    """Writes an RWKV GGUF in llama.cpp's layout. By default random weights; `specs` (from
    `rwkv_specs`, types possibly changed) and `data(spec)` (the tensor's values: float32 for F32,
    float16 for F16, uint8 blocks for quantized types) let other tools write trained weights
    with the same metadata and tensor table (tools/train_demo_model.py)."""
    arch = p["arch"]
    if p["n_embd"] % p["head_size"]:
        raise ValueError("n_embd must be a multiple of head_size")
    w = gguf.GGUFWriter(path, arch)
    w.add_name(name)
    w.add_string("general.license", license)
    w.add_string("general.source.description", description)
    for key, value in (extra_strings or {}).items():
        w.add_string(key, value)
    w.add_uint32("general.file_type", FILE_TYPE[qtype])
    w.add_context_length(RWKV_CONTEXT_LENGTH)
    w.add_embedding_length(p["n_embd"])
    w.add_block_count(p["n_layer"])
    w.add_layer_norm_eps(1e-5)
    w.add_wkv_head_size(p["head_size"])
    w.add_feed_forward_length(p["n_ff"])
    w.add_head_count(0)  # required by llama.cpp, unused
    if arch == "rwkv7":
        w.add_decay_lora_rank(p["lora_decay"])
        w.add_iclr_lora_rank(p["lora_iclr"])
        w.add_value_residual_mix_lora_rank(p["lora_value"])
        w.add_gate_lora_rank(p["lora_gate"])
    else:
        w.add_rescale_every_n_layers(0)
        w.add_time_mix_extra_dim(p["mix_dim"])
        w.add_time_decay_extra_dim(p["decay_dim"])
    texts, types, vocab_desc = rwkv_vocab(p["n_vocab"])
    w.add_tokenizer_model("rwkv")
    w.add_token_list(texts)
    w.add_token_types(types)

    if specs is None:
        specs = rwkv_specs(p, qtype, quantize_lora)
    for _, s in specs:
        w.add_tensor_info(s.name, s.np_shape, np.dtype(np.float32), s.nbytes, raw_dtype=s.qtype)
    total = sum(s.nbytes for _, s in specs)
    print(f"{name}: {arch}, {len(specs)} tensors, {total / 2**20:.1f} MiB of weights, vocabulary: {vocab_desc}",
          file=sys.stderr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    done, last_layer = 0, None
    for idx, (layer, s) in enumerate(specs):
        if layer != last_layer and layer >= 0:
            print(f"  layer {layer + 1}/{p['n_layer']} ({done / 2**20:.0f}/{total / 2**20:.0f} MiB)",
                  file=sys.stderr, flush=True)
        last_layer = layer
        if data is None:
            values = materialize(s, np.random.default_rng([seed, idx]))
        else:
            values = data(s)
        assert values.nbytes == s.nbytes, (s.name, values.nbytes, s.nbytes)
        w.write_tensor_data(values)
        done += s.nbytes
        del values
    w.close()


# ---- transformer / MoE presets (qwen2, olmoe, qwen3moe, qwen2moe), llama.cpp's layout ---------


def bytes_to_unicode() -> list[str]:
    """GPT-2's byte -> printable symbol table (the byte-level BPE alphabet), in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


# A handful of real merges (llama.cpp refuses a gpt2 vocabulary without a merge list, and
# gguf-py does not write an empty one): each pair's result is a token after the 256 bytes.
GPT2_MERGES = ["\u0120 t", "h e", "\u0120 a", "i n", "\u0120t he", "e r", "o n", "\u0120 s", "r e", "a t"]


def gpt2_vocab(n_vocab: int) -> tuple[list[str], list[int], list[str], int]:
    """(tokens, types, merges, eos id): 256 byte symbols, the merged tokens, fillers,
    `<|endoftext|>` as the last token."""
    merges = list(GPT2_MERGES)
    toks = bytes_to_unicode()
    toks += [m.replace(" ", "") for m in merges]
    toks += [f"filler{i}" for i in range(len(toks), n_vocab - 1)]
    toks.append("<|endoftext|>")
    types = [TOKEN_TYPE_NORMAL] * (n_vocab - 1) + [3]  # 3 = CONTROL
    return toks, types, merges, n_vocab - 1


def transformer_specs(p: dict, qtype: QT) -> list[tuple[int, TensorSpec]]:
    """(layer or -1, spec) in file order; ggml ne (ne0 = input width first) as llama.cpp expects."""
    arch, C, V, L = p["arch"], p["n_embd"], p["n_vocab"], p["n_layer"]
    H, Hkv, hd = p["n_head"], p["n_head_kv"], p["head_dim"]
    moe = arch != "qwen2"
    out: list[tuple[int, TensorSpec]] = []

    def add(layer: int, name: str, ne: tuple[int, ...], qt: QT, dist: tuple) -> None:
        out.append((layer, TensorSpec(name, ne, qt, dist)))

    def mat(layer: int, name: str, ne: tuple[int, ...], std: float | None = None) -> None:
        add(layer, name, ne, qtype, ("normal", 0.0, std if std is not None else 0.02))

    def vec(layer: int, name: str, n: int, mean: float = 1.0, std: float = 0.01) -> None:
        add(layer, name, (n,), QT.F32, ("normal", mean, std))

    mat(-1, "token_embd.weight", (C, V))
    for i in range(L):
        b = f"blk.{i}"
        vec(i, f"{b}.attn_norm.weight", C)
        mat(i, f"{b}.attn_q.weight", (C, H * hd))
        mat(i, f"{b}.attn_k.weight", (C, Hkv * hd))
        mat(i, f"{b}.attn_v.weight", (C, Hkv * hd))
        if p["qkv_bias"]:
            vec(i, f"{b}.attn_q.bias", H * hd, 0.0, 0.02)
            vec(i, f"{b}.attn_k.bias", Hkv * hd, 0.0, 0.02)
            vec(i, f"{b}.attn_v.bias", Hkv * hd, 0.0, 0.02)
        if arch == "olmoe":  # q/k norm over the whole projection
            vec(i, f"{b}.attn_q_norm.weight", H * hd)
            vec(i, f"{b}.attn_k_norm.weight", Hkv * hd)
        elif arch == "qwen3moe":  # q/k norm per head
            vec(i, f"{b}.attn_q_norm.weight", hd)
            vec(i, f"{b}.attn_k_norm.weight", hd)
        mat(i, f"{b}.attn_output.weight", (H * hd, C))
        vec(i, f"{b}.ffn_norm.weight", C)
        if not moe:
            F = p["n_ff"]
            mat(i, f"{b}.ffn_gate.weight", (C, F))
            mat(i, f"{b}.ffn_up.weight", (C, F))
            mat(i, f"{b}.ffn_down.weight", (F, C))
            continue
        E, F = p["n_expert"], p["n_ff_exp"]
        add(i, f"{b}.ffn_gate_inp.weight", (C, E), QT.F32, ("normal", 0.0, 0.02))
        mat(i, f"{b}.ffn_gate_exps.weight", (C, F, E))
        mat(i, f"{b}.ffn_up_exps.weight", (C, F, E))
        mat(i, f"{b}.ffn_down_exps.weight", (F, C, E))
        if arch == "qwen2moe":
            Fs = p["n_ff_shexp"]
            # the shared expert's sigmoid gate: ne (C, 1), F32, as the converter writes it
            add(i, f"{b}.ffn_gate_inp_shexp.weight", (C, 1), QT.F32, ("normal", 0.0, 0.02))
            mat(i, f"{b}.ffn_gate_shexp.weight", (C, Fs))
            mat(i, f"{b}.ffn_up_shexp.weight", (C, Fs))
            mat(i, f"{b}.ffn_down_shexp.weight", (Fs, C))
    vec(-1, "output_norm.weight", C)
    if not p["tied"]:
        mat(-1, "output.weight", (C, V))
    return out


def write_transformer(path: str, p: dict, qtype: QT, seed: int, name: str) -> None:
    arch = p["arch"]
    w = gguf.GGUFWriter(path, arch)
    w.add_name(name)
    w.add_string("general.license", "CC0-1.0")
    w.add_string("general.source.description", "random weights written by tools/make_synthetic.py")
    w.add_uint32("general.file_type", FILE_TYPE[qtype])
    w.add_vocab_size(p["n_vocab"])
    w.add_context_length(p["n_ctx"])
    w.add_embedding_length(p["n_embd"])
    w.add_block_count(p["n_layer"])
    w.add_feed_forward_length(p.get("n_ff", p.get("n_ff_exp", 0)))
    w.add_head_count(p["n_head"])
    w.add_head_count_kv(p["n_head_kv"])
    if p["head_dim"] * p["n_head"] != p["n_embd"]:
        w.add_key_length(p["head_dim"])
        w.add_value_length(p["head_dim"])
    w.add_rope_freq_base(p["rope_theta"])
    w.add_layer_norm_rms_eps(p["rms_eps"])
    if arch != "qwen2":
        w.add_expert_count(p["n_expert"])
        w.add_expert_used_count(p["n_expert_used"])
        if arch in ("qwen2moe", "qwen3moe"):
            w.add_expert_feed_forward_length(p["n_ff_exp"])
        if arch == "qwen2moe":
            w.add_expert_shared_feed_forward_length(p["n_ff_shexp"])
    toks, types, merges, eos = gpt2_vocab(p["n_vocab"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(p["pre"])
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(eos)
    w.add_bos_token_id(eos)
    w.add_add_bos_token(False)

    specs = transformer_specs(p, qtype)
    for _, s in specs:
        w.add_tensor_info(s.name, s.np_shape, np.dtype(np.float32), s.nbytes, raw_dtype=s.qtype)
    total = sum(s.nbytes for _, s in specs)
    print(f"{name}: {arch}, {len(specs)} tensors, {total / 2**30:.2f} GiB of weights",
          file=sys.stderr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    done, last_layer = 0, None
    for idx, (layer, s) in enumerate(specs):
        if layer != last_layer and layer >= 0:
            print(f"  layer {layer + 1}/{p['n_layer']} ({done / 2**20:.0f}/{total / 2**20:.0f} MiB)",
                  file=sys.stderr, flush=True)
        last_layer = layer
        values = materialize(s, np.random.default_rng([seed, idx]))
        assert values.nbytes == s.nbytes, (s.name, values.nbytes, s.nbytes)
        w.write_tensor_data(values)
        done += s.nbytes
        del values
    w.close()


def _bench_python() -> str:
    env = os.environ.get("ROOST_BENCH_PYTHON")
    if env:
        return env
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for root in (here, os.path.join(here, "..", "main")):
        cand = os.path.join(root, ".venv-bench", "bin", "python")
        if os.path.exists(cand):
            return cand
    try:
        import subprocess
        common = subprocess.run(["git", "-C", here, "rev-parse", "--git-common-dir"], capture_output=True,
                                text=True, check=True).stdout.strip()
        cand = os.path.join(os.path.dirname(os.path.abspath(os.path.join(here, common))), ".venv-bench", "bin",
                            "python")
        if os.path.exists(cand):
            return cand
    except Exception:  # noqa: BLE001
        pass
    raise SystemExit("no .venv-bench (llama-cpp-python) found for the Q4_K requantization; set ROOST_BENCH_PYTHON")


LLAMA_QUANTIZE = r"""
import ctypes, sys, llama_cpp
src, dst, ftype, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = ftype
params.allow_requantize = True
params.nthread = threads
sys.exit(llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params)))
"""


LLAMA_CHECK = r"""
import sys, time, numpy as np, llama_cpp
path, n = sys.argv[1], int(sys.argv[2])
t = time.time()
llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=64, n_threads=2, logits_all=True, verbose=False)
t_load = time.time() - t
prompt = llm.tokenize(b"Hello world, the", add_bos=False)
llm.eval(prompt)
out = []
t = time.time()
for _ in range(n):
    row = np.asarray(llm.scores[llm.n_tokens - 1])
    assert np.isfinite(row).all() and row.std() > 0, "non-finite or flat logits"
    out.append(int(row.argmax()))
    llm.eval([out[-1]])
print(f"llama.cpp {llama_cpp.__version__}: {llm.metadata.get('general.architecture')} loaded in {t_load:.1f}s, "
      f"prompt {prompt}, greedy {out}, {n / (time.time() - t):.2f} tok/s")
"""


def llama_check(path: str, n_tokens: int = 4) -> None:
    """Load the file with llama.cpp (llama-cpp-python from .venv-bench) and decode a few tokens."""
    import subprocess
    r = subprocess.run([_bench_python(), "-c", LLAMA_CHECK, path, str(n_tokens)])
    if r.returncode != 0:
        raise SystemExit(f"llama.cpp could not load or decode {path}")


def llama_quantize(src: str, dst: str, ftype: int) -> None:
    import subprocess
    r = subprocess.run([_bench_python(), "-c", LLAMA_QUANTIZE, src, dst, str(ftype), str(os.cpu_count() or 1)])
    if r.returncode != 0:
        raise SystemExit(f"llama_model_quantize failed ({r.returncode})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--type", choices=sorted(TYPES), default="q8_0", help="type of the weight matrices")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quantize-lora", action="store_true",
                    help="RWKV: store the LoRA matrices in --type too when their rows (ne0) are a multiple "
                         "of its block size (llama.cpp's quantizer never does; default: F32/F16 as llama.cpp)")
    ap.add_argument("--out", required=True, help="output .gguf path")
    ap.add_argument("--layers", type=int, help="override the preset's layer count")
    ap.add_argument("--check", action="store_true",
                    help="afterwards load the file with llama.cpp (.venv-bench) and greedy-decode 4 tokens")
    args = ap.parse_args()

    p = dict(PRESETS[args.preset])
    if args.layers:
        p["n_layer"] = args.layers
    qtype = TYPES[args.type]
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    # Write to a temporary name in the same folder, then rename: never a half-written model.
    fd, tmp = tempfile.mkstemp(prefix=".synthetic-", suffix=".gguf", dir=out_dir)
    os.close(fd)
    try:
        name = f"synthetic {args.preset} {args.type}"
        if p["arch"] in ("rwkv6", "rwkv7"):
            write_rwkv(tmp, p, qtype, args.seed, name, quantize_lora=args.quantize_lora)
        elif p["arch"] in TRANSFORMER_ARCHS and args.preset != "demo-moe":
            if qtype == QT.Q4_K:
                fd2, src = tempfile.mkstemp(prefix=".synthetic-q8_0-", suffix=".gguf", dir=out_dir)
                os.close(fd2)
                try:
                    write_transformer(src, p, QT.Q8_0, args.seed, name)
                    llama_quantize(src, tmp, FILE_TYPE[QT.Q4_K])
                finally:
                    os.unlink(src)
            else:
                write_transformer(tmp, p, qtype, args.seed, name)
        else:
            if qtype == QT.Q4_K:
                raise SystemExit("--type q4_K is only implemented for the RWKV presets")
            write_moe(tmp, p, qtype, args.seed, name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the model the usual mode
        os.replace(tmp, args.out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB)", file=sys.stderr)
    if args.check:
        llama_check(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
