"""Consistency of the committed transformer/MoE/Mamba fixtures (Tests/Fixtures/transformers/).

The fixtures are made by tools/make_transformer_fixtures.py (torch, transformers, llama.cpp's
converter; `make fixtures`). This test needs none of that: gguf-py and numpy only. It checks
that every GGUF opens, carries the architecture, metadata and the tensor names and shapes
llama.cpp uses for it (derived here from the Hugging Face config in expected.json, not copied
from the file), that quantized files hold the same weights as their reference file, and that
expected.json is self-consistent (prompt and continuation within the vocabulary, one logits row
per prompt position, greedy token = argmax of the last prompt row).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGUFReader, GGUFValueType  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

ROOT = Path(__file__).resolve().parents[2] / "Tests" / "Fixtures" / "transformers"
MODELS = sorted(p.name for p in ROOT.iterdir() if (p / "expected.json").exists()) if ROOT.exists() else []
MAX_FILE = 2 * 1024 * 1024
MAX_DIR = 20 * 1024 * 1024


def test_fixtures_present():
    names = set(MODELS)
    for required in ("llama", "qwen2", "mixtral", "qwen2moe", "qwen3moe", "olmoe", "deepseek2-lite",
                     "deepseek2-qlora", "mamba"):
        assert required in names, f"missing fixture {required} in {ROOT}"


def test_directory_size():
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total < MAX_DIR, f"{ROOT} holds {total / 2**20:.1f} MiB"


def load(name: str) -> dict:
    return json.loads((ROOT / name / "expected.json").read_text())


def field(r: GGUFReader, key: str):
    f = r.fields.get(key)
    if f is None:
        return None
    t = f.types[0]
    if t == GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode()
    if t == GGUFValueType.ARRAY:
        if f.types[-1] == GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode() for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    return f.parts[f.data[0]].tolist()[0]


def expected_tensors(arch: str, cfg: dict) -> dict[str, tuple[int, ...]]:
    """llama.cpp's tensor names and ggml shapes (ne0 first) for a Hugging Face config."""
    C = cfg["hidden_size"]
    V = cfg["vocab_size"]
    L = cfg["num_hidden_layers"]
    t: dict[str, tuple[int, ...]] = {"token_embd.weight": (C, V), "output_norm.weight": (C,)}
    if not cfg.get("tie_word_embeddings", False):
        t["output.weight"] = (C, V)
    if arch == "mamba":
        D, N, K, R = cfg["intermediate_size"], cfg["state_size"], cfg["conv_kernel"], cfg["time_step_rank"]
        for i in range(L):
            b = f"blk.{i}"
            t.update({f"{b}.attn_norm.weight": (C,), f"{b}.ssm_in.weight": (C, 2 * D),
                      f"{b}.ssm_conv1d.weight": (K, D), f"{b}.ssm_conv1d.bias": (D,),
                      f"{b}.ssm_x.weight": (D, R + 2 * N), f"{b}.ssm_dt.weight": (R, D),
                      f"{b}.ssm_dt.bias": (D,), f"{b}.ssm_a": (N, D), f"{b}.ssm_d": (D,),
                      f"{b}.ssm_out.weight": (D, C)})
        return t
    H = cfg["num_attention_heads"]
    if arch == "deepseek2":
        nope, rope, vd, kvr = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
        qr = cfg.get("q_lora_rank")
        E, F, Fe = cfg["n_routed_experts"], cfg["intermediate_size"], cfg["moe_intermediate_size"]
        Fs = Fe * cfg["n_shared_experts"]
        for i in range(L):
            b = f"blk.{i}"
            t[f"{b}.attn_norm.weight"] = (C,)
            if qr:
                t.update({f"{b}.attn_q_a.weight": (C, qr), f"{b}.attn_q_a_norm.weight": (qr,),
                          f"{b}.attn_q_b.weight": (qr, H * (nope + rope))})
            else:
                t[f"{b}.attn_q.weight"] = (C, H * (nope + rope))
            t.update({f"{b}.attn_kv_a_mqa.weight": (C, kvr + rope), f"{b}.attn_kv_a_norm.weight": (kvr,),
                      f"{b}.attn_k_b.weight": (nope, kvr, H), f"{b}.attn_v_b.weight": (kvr, vd, H),
                      f"{b}.attn_output.weight": (H * vd, C), f"{b}.ffn_norm.weight": (C,)})
            if i < cfg["first_k_dense_replace"]:
                t.update({f"{b}.ffn_gate.weight": (C, F), f"{b}.ffn_up.weight": (C, F),
                          f"{b}.ffn_down.weight": (F, C)})
            else:
                t.update({f"{b}.ffn_gate_inp.weight": (C, E), f"{b}.ffn_gate_exps.weight": (C, Fe, E),
                          f"{b}.ffn_up_exps.weight": (C, Fe, E), f"{b}.ffn_down_exps.weight": (Fe, C, E),
                          f"{b}.ffn_gate_shexp.weight": (C, Fs), f"{b}.ffn_up_shexp.weight": (C, Fs),
                          f"{b}.ffn_down_shexp.weight": (Fs, C)})
        return t
    Hkv = cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or C // H
    for i in range(L):
        b = f"blk.{i}"
        t.update({f"{b}.attn_norm.weight": (C,), f"{b}.attn_q.weight": (C, H * hd),
                  f"{b}.attn_k.weight": (C, Hkv * hd), f"{b}.attn_v.weight": (C, Hkv * hd),
                  f"{b}.attn_output.weight": (H * hd, C), f"{b}.ffn_norm.weight": (C,)})
        if arch in ("qwen2", "qwen2moe"):
            t.update({f"{b}.attn_q.bias": (H * hd,), f"{b}.attn_k.bias": (Hkv * hd,),
                      f"{b}.attn_v.bias": (Hkv * hd,)})
        if arch == "qwen3moe":
            t.update({f"{b}.attn_q_norm.weight": (hd,), f"{b}.attn_k_norm.weight": (hd,)})
        if arch == "olmoe":
            t.update({f"{b}.attn_q_norm.weight": (H * hd,), f"{b}.attn_k_norm.weight": (Hkv * hd,)})
        E = cfg.get("num_local_experts") or cfg.get("num_experts")
        if not E:
            F = cfg["intermediate_size"]
            t.update({f"{b}.ffn_gate.weight": (C, F), f"{b}.ffn_up.weight": (C, F), f"{b}.ffn_down.weight": (F, C)})
            continue
        Fe = cfg.get("moe_intermediate_size") or cfg["intermediate_size"]
        t.update({f"{b}.ffn_gate_inp.weight": (C, E), f"{b}.ffn_gate_exps.weight": (C, Fe, E),
                  f"{b}.ffn_up_exps.weight": (C, Fe, E), f"{b}.ffn_down_exps.weight": (Fe, C, E)})
        if arch == "qwen2moe":
            Fs = cfg["shared_expert_intermediate_size"]
            t.update({f"{b}.ffn_gate_inp_shexp.weight": (C, 1), f"{b}.ffn_gate_shexp.weight": (C, Fs),
                      f"{b}.ffn_up_shexp.weight": (C, Fs), f"{b}.ffn_down_shexp.weight": (Fs, C)})
    return t


def ne4(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape) + (1,) * (4 - len(shape))


def dequant(t) -> np.ndarray:
    if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        return np.asarray(t.data, dtype=np.float32).reshape(-1)
    return dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)


@pytest.mark.parametrize("name", MODELS)
def test_expected_json(name):
    e = load(name)
    V = e["vocab_size"]
    assert e["config"]["vocab_size"] >= V
    prompt = e["prompt_ids"]
    assert 8 <= len(prompt) <= 64 and all(0 <= x < V for x in prompt)
    assert len(e["logits_positions"]) == len(e["logits"])
    assert all(0 <= p < len(prompt) for p in e["logits_positions"])
    assert e["logits_positions"][-1] == len(prompt) - 1
    logits = np.array(e["logits"], dtype=np.float64)
    assert logits.shape[1] == e["config"]["vocab_size"] and np.isfinite(logits).all()
    assert logits.std() > 0.1, "flat logits: the fixture would not discriminate"
    greedy = e["greedy_ids"]
    assert len(greedy) == 32 and all(0 <= x < V for x in greedy)
    assert int(logits[-1].argmax()) == greedy[0]
    assert len(e["greedy_top2_margins"]) == len(greedy)
    assert e["transformers_version"] and e["hf_class"]
    for t, fname in e["files"].items():
        p = ROOT / name / fname
        assert p.exists(), p
        assert p.stat().st_size < MAX_FILE, f"{p} is {p.stat().st_size} bytes"
        assert t in e["recommended_tolerances"]
        tol = e["recommended_tolerances"][t]
        assert tol["max_abs"] > 0 and tol["max_rel"] > 0
    present = {p.name for p in (ROOT / name).glob("*.gguf")}
    assert present == set(e["files"].values()), "GGUF files and expected.json disagree"


@pytest.mark.parametrize("name", MODELS)
def test_gguf_layout(name):
    e = load(name)
    cfg = e["config"]
    arch = e["gguf_architecture"]
    want = expected_tensors(arch, cfg)
    for fname in e["files"].values():
        r = GGUFReader(str(ROOT / name / fname))
        assert field(r, "general.architecture") == arch
        assert field(r, f"{arch}.block_count") == cfg["num_hidden_layers"]
        assert field(r, f"{arch}.embedding_length") == cfg["hidden_size"]
        assert field(r, "tokenizer.ggml.model") == "gpt2"
        assert field(r, "tokenizer.ggml.pre") == e["tokenizer_pre"]
        tokens = field(r, "tokenizer.ggml.tokens")
        assert len(tokens) == cfg["vocab_size"]
        assert all(x < len(tokens) for x in e["prompt_ids"] + e["greedy_ids"])
        if arch != "mamba":
            assert field(r, f"{arch}.attention.head_count") == cfg["num_attention_heads"]
        if arch in ("llama", "qwen2", "qwen2moe", "qwen3moe", "olmoe"):
            assert field(r, f"{arch}.attention.head_count_kv") == cfg["num_key_value_heads"]
            assert field(r, f"{arch}.rope.freq_base") == pytest.approx(cfg["rope_theta"])
        E = cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts")
        if E:
            assert field(r, f"{arch}.expert_count") == E
            assert field(r, f"{arch}.expert_used_count") == cfg["num_experts_per_tok"]
        if arch == "deepseek2":
            assert field(r, "deepseek2.attention.kv_lora_rank") == cfg["kv_lora_rank"]
            assert field(r, "deepseek2.leading_dense_block_count") == cfg["first_k_dense_replace"]
            assert field(r, "deepseek2.expert_shared_count") == cfg["n_shared_experts"]
            assert field(r, "deepseek2.rope.dimension_count") == cfg["qk_rope_head_dim"]
            assert field(r, "deepseek2.attention.q_lora_rank") == cfg.get("q_lora_rank")
        if arch == "mamba":
            assert field(r, "mamba.ssm.inner_size") == cfg["intermediate_size"]
            assert field(r, "mamba.ssm.state_size") == cfg["state_size"]
            assert field(r, "mamba.ssm.conv_kernel") == cfg["conv_kernel"]
            assert field(r, "mamba.ssm.time_step_rank") == cfg["time_step_rank"]
        got = {t.name: tuple(int(x) for x in t.shape) for t in r.tensors}
        assert set(got) == set(want), (fname, sorted(set(got) ^ set(want)))
        for k, shape in want.items():
            # ggml drops trailing 1s from n_dims: the converter writes ffn_gate_inp_shexp as
            # 2-D (C, 1), llama.cpp's quantizer as 1-D (C); both are ne = (C, 1, 1, 1).
            assert ne4(got[k]) == ne4(shape), (fname, k, got[k], shape)


@pytest.mark.parametrize("name", MODELS)
def test_quantized_files_hold_the_same_weights(name):
    """Every committed type dequantizes to the same weights (within its format's error) as the
    most precise committed file: the files come from one model."""
    e = load(name)
    order = ["f32", "f16", "q8_0", "q4_0", "q4_k_m"]
    types = sorted(e["files"], key=order.index)
    if len(types) < 2:
        pytest.skip("one committed type")
    ref = {t.name: dequant(t) for t in GGUFReader(str(ROOT / name / e["files"][types[0]])).tensors}
    bound = {"f16": 2e-3, "q8_0": 2e-2, "q4_0": 0.25, "q4_k_m": 0.25}
    for t in types[1:]:
        for ten in GGUFReader(str(ROOT / name / e["files"][t])).tensors:
            a, b = ref[ten.name], dequant(ten)
            scale = np.abs(a).max() + 1e-12
            err = np.abs(a - b).max() / scale
            assert err < bound[t], (name, t, ten.name, err)
