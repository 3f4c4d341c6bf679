"""Reference fixtures for transformer, MoE and Mamba models (Tests/Fixtures/transformers/).

For every model below: a tiny random Hugging Face `transformers` model (seeded config, weights
drawn with a larger std than the default so logits are not flat and routing differs per token)
and a byte-level BPE tokenizer trained with `tokenizers` are saved with save_pretrained, then
converted to GGUF by llama.cpp's own converter (convert_hf_to_gguf.py from the llama-cpp-python
0.3.36 sdist, with its bundled gguf-py), quantized with llama.cpp's quantizer
(llama_cpp.llama_model_quantize from .venv-bench) and checked against llama.cpp itself.

The oracle is transformers in float32: logits at every prompt position and a greedy
continuation (generate, do_sample=False, no EOS stop). llama.cpp's logits and continuation on
every GGUF type are recorded as a second reference, and their difference to transformers is
measured and written to expected.json and the directory's README.

    .venv-fixtures/bin/python tools/make_transformer_fixtures.py            # all models
    .venv-fixtures/bin/python tools/make_transformer_fixtures.py --only llama,mamba
    .venv-fixtures/bin/python tools/make_transformer_fixtures.py --work .run/tf-fixtures --keep-all

Two interpreters are involved: this script runs in .venv-fixtures (torch, transformers); the
llama.cpp parts (quantize, evaluate) run in a subprocess with .venv-bench's python
(llama-cpp-python 0.3.36, the same llama.cpp revision as the converter), using the `worker`
sub-command of this file, which imports neither torch nor transformers.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"
OUT_DIR = REPO / "Tests" / "Fixtures" / "transformers"


def _main_checkout() -> Path:
    """The main checkout (worktrees share its venvs): git's common dir's parent."""
    try:
        common = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--git-common-dir"],
                                capture_output=True, text=True, check=True).stdout.strip()
        return (REPO / common).resolve().parent
    except Exception:  # noqa: BLE001
        return REPO


BENCH_PY = Path(os.environ.get("ROOST_BENCH_PYTHON", _main_checkout() / ".venv-bench" / "bin" / "python"))
CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "README.md", "docs/")
VOCAB_SIZE = 512
PROMPT_LEN = 16
N_GREEDY = 32
SEED = 1234

# Pre-tokenizer regexes of the llama.cpp pre-tokenizer names the fixtures claim (the same
# expressions llama.cpp's llama-vocab.cpp uses for those names), so llama.cpp tokenizes text
# as the Hugging Face tokenizer does.
REGEX_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
REGEX_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# ------------------------------------------------------------------------------------------
# Model catalogue
# ------------------------------------------------------------------------------------------

COMMON_ATTN = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                   max_position_embeddings=256, rms_norm_eps=1e-5)

MODELS: dict[str, dict] = {
    "llama": dict(
        cls="LlamaForCausalLM", arch="llama", pre="llama-bpe",
        config=dict(**COMMON_ATTN, intermediate_size=128, num_hidden_layers=2, rope_theta=500000.0,
                    tie_word_embeddings=False),
        types=["f32", "f16", "q8_0", "q4_0"], commit=["f32", "q8_0", "q4_0"]),
    "qwen2": dict(
        cls="Qwen2ForCausalLM", arch="qwen2", pre="qwen2",
        config=dict(**COMMON_ATTN, intermediate_size=128, num_hidden_layers=2, rope_theta=1000000.0,
                    tie_word_embeddings=True, use_sliding_window=False),
        types=["f32", "f16", "q8_0", "q4_0"], commit=["f32", "q8_0", "q4_0"]),
    "mixtral": dict(
        cls="MixtralForCausalLM", arch="llama", pre="llama-bpe",
        config=dict(**COMMON_ATTN, intermediate_size=64, num_hidden_layers=2, num_local_experts=8,
                    num_experts_per_tok=2, rope_theta=1000000.0, tie_word_embeddings=False,
                    sliding_window=None),
        types=["f32", "f16", "q8_0", "q4_0"], commit=["f32", "q8_0", "q4_0"]),
    "qwen2moe": dict(
        cls="Qwen2MoeForCausalLM", arch="qwen2moe", pre="qwen2",
        config=dict(**COMMON_ATTN, intermediate_size=128, moe_intermediate_size=32,
                    shared_expert_intermediate_size=64, num_hidden_layers=2, num_experts=8,
                    num_experts_per_tok=2, norm_topk_prob=False, decoder_sparse_step=1,
                    mlp_only_layers=[], rope_theta=1000000.0, tie_word_embeddings=False,
                    use_sliding_window=False),
        types=["f32", "f16", "q8_0", "q4_0"], commit=["f32", "q8_0", "q4_0"]),
    "qwen3moe": dict(
        cls="Qwen3MoeForCausalLM", arch="qwen3moe", pre="qwen2",
        # head_dim 32 with 4 heads: the query width (128) differs from hidden (64), as in Qwen3.
        config=dict(**COMMON_ATTN, head_dim=32, intermediate_size=128, moe_intermediate_size=32,
                    num_hidden_layers=2, num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
                    decoder_sparse_step=1, mlp_only_layers=[], rope_theta=1000000.0,
                    tie_word_embeddings=False, use_sliding_window=False),
        types=["f32", "f16", "q8_0", "q4_0"], commit=["f32", "q8_0", "q4_0"]),
    # num_key_value_heads = num_attention_heads as in OLMoE-1B-7B: llama.cpp's olmoe loader
    # wants attn_k_norm of n_embd values, so an OLMoE with GQA (k_norm over n_head_kv*head_dim,
    # as transformers implements it) does not load (check_tensor_dims: expected 64, got 32).
    "olmoe": dict(
        cls="OlmoeForCausalLM", arch="olmoe", pre="olmo",
        config=dict(**dict(COMMON_ATTN, num_key_value_heads=4), intermediate_size=32, num_hidden_layers=2, num_experts=8,
                    num_experts_per_tok=2, norm_topk_prob=False, rope_theta=10000.0,
                    clip_qkv=None, tie_word_embeddings=False),
        types=["f32", "f16", "q8_0", "q4_0"], commit=["f32", "q8_0", "q4_0"]),
    # DeepSeek-V2-Lite's routing and attention: q_lora_rank None, MLA (kv_lora_rank), first
    # layer dense, shared experts, greedy top-k over softmax scores (n_group 1, topk_group 1),
    # no top-k renormalisation, routed_scaling_factor 1, YaRN as V2-Lite configures it.
    # 27 layers because llama.cpp (deepseek2.cpp, load_arch_hparams) only treats a model as a
    # "lite" one without q_lora_rank when n_layer is 27 or 26 (or 48 with a 128256 vocabulary);
    # any other layer count fails with "key not found in model: deepseek2.attention.q_lora_rank".
    # Narrow (hidden 32, 2 heads, 4 experts) to keep 27 layers small.
    "deepseek2-lite": dict(
        cls="DeepseekV2ForCausalLM", arch="deepseek2", pre="gpt-2",
        config=dict(hidden_size=32, num_attention_heads=2, num_key_value_heads=2,
                    max_position_embeddings=163840, rms_norm_eps=1e-6,
                    intermediate_size=64, moe_intermediate_size=32, num_hidden_layers=27,
                    first_k_dense_replace=1, moe_layer_freq=1, n_routed_experts=4,
                    num_experts_per_tok=2, n_shared_experts=1, topk_method="greedy", n_group=1,
                    topk_group=1, norm_topk_prob=False, routed_scaling_factor=1.0,
                    q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=16,
                    v_head_dim=16, head_dim=16, rope_theta=10000.0,
                    rope_scaling=dict(type="yarn", rope_type="yarn", factor=40.0,
                                      original_max_position_embeddings=4096, beta_fast=32.0,
                                      beta_slow=1.0, mscale=0.707, mscale_all_dim=0.707),
                    tie_word_embeddings=False, scoring_func="softmax"),
        types=["f32", "f16", "q8_0"], commit=["f16", "q8_0"]),
    # The same without rope scaling: separates MLA/MoE from YaRN when they disagree.
    "deepseek2-lite-norope": dict(
        cls="DeepseekV2ForCausalLM", arch="deepseek2", pre="gpt-2", base="deepseek2-lite",
        config_update=dict(rope_scaling=None),
        types=["f32", "f16", "q8_0"], commit=["f16"]),
    # DeepSeek-V2 (full) style: q_lora_rank set, group-limited greedy routing (4 groups of 2,
    # 2 used), routed_scaling_factor != 1, no rope scaling, 3 layers (first dense). A small
    # router std keeps the softmax flat enough that "best group by max" (transformers) and "best
    # group by top-2 sum" (llama.cpp) sometimes differ; deepseek_group_rules counts how often.
    "deepseek2-qlora": dict(
        cls="DeepseekV2ForCausalLM", arch="deepseek2", pre="gpt-2", router_std=0.05,
        config=dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4,
                    max_position_embeddings=4096, rms_norm_eps=1e-6,
                    intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=3,
                    first_k_dense_replace=1, moe_layer_freq=1, n_routed_experts=8,
                    num_experts_per_tok=2, n_shared_experts=2, topk_method="group_limited_greedy",
                    n_group=4, topk_group=2, norm_topk_prob=False, routed_scaling_factor=2.0,
                    q_lora_rank=32, kv_lora_rank=32, qk_nope_head_dim=32, qk_rope_head_dim=16,
                    v_head_dim=32, head_dim=16, rope_theta=10000.0, rope_scaling=None,
                    tie_word_embeddings=False, scoring_func="softmax"),
        types=["f32", "f16", "q8_0", "q4_0"], commit=["f32", "q8_0", "q4_0"]),
    "mamba": dict(
        cls="MambaForCausalLM", arch="mamba", pre="gpt-2",
        config=dict(hidden_size=64, state_size=16, num_hidden_layers=2, conv_kernel=4, expand=2,
                    intermediate_size=128, time_step_rank=4, layer_norm_epsilon=1e-5,
                    use_bias=False, use_conv_bias=True, residual_in_fp32=True,
                    tie_word_embeddings=True, pad_vocab_size_multiple=8),
        types=["f32", "f16", "q8_0", "q4_0"], commit=["f32", "q8_0", "q4_0"]),
    # Q4_K needs rows that are multiples of 256: two 256-wide models, committed as Q4_K_M only
    # (the F32 file is 5-9 MB; transformers' logits in expected.json are the reference).
    "llama-q4k": dict(
        cls="LlamaForCausalLM", arch="llama", pre="llama-bpe",
        config=dict(hidden_size=256, num_attention_heads=4, num_key_value_heads=2,
                    max_position_embeddings=256, rms_norm_eps=1e-5, intermediate_size=512,
                    num_hidden_layers=2, rope_theta=10000.0, tie_word_embeddings=False),
        types=["f32", "q8_0", "q4_k_m"], commit=["q4_k_m"]),
    "qwen3moe-q4k": dict(
        cls="Qwen3MoeForCausalLM", arch="qwen3moe", pre="qwen2",
        config=dict(hidden_size=256, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                    max_position_embeddings=256, rms_norm_eps=1e-6, intermediate_size=512,
                    moe_intermediate_size=256, num_hidden_layers=2, num_experts=4,
                    num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1,
                    mlp_only_layers=[], rope_theta=1000000.0, tie_word_embeddings=False,
                    use_sliding_window=False),
        types=["f32", "q8_0", "q4_k_m"], commit=["q4_k_m"]),
}

# Weight init std: large enough that logits are far from flat and routing differs per token.
INIT_STD = 0.08
ROUTER_STD = 0.5

# ------------------------------------------------------------------------------------------
# llama.cpp converter from the sdist
# ------------------------------------------------------------------------------------------


def converter_dir() -> Path:
    """convert_hf_to_gguf.py, conversion/ and gguf-py/ from the verified llama-cpp-python sdist."""
    sys.path.insert(0, str(TOOLS))
    import chat_template_sources as cts  # noqa: E402  (download + sha256 check live there)

    dest = cts.CACHE / f"llama-cpp-convert-{cts.VERSION}-2"
    stamp = dest / ".complete"
    if stamp.exists():
        return dest
    sdist = cts.sdist_path()
    prefix = f"llama_cpp_python-{cts.VERSION}/vendor/llama.cpp/"
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist, "r:gz") as tar:
        for m in tar.getmembers():
            if not m.isfile() or not m.name.startswith(prefix):
                continue
            rel = m.name[len(prefix):]
            if not any(rel == f or (f.endswith("/") and rel.startswith(f)) for f in CONVERTER_FILES):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(m).read())
    stamp.write_text(f"{cts.SDIST_NAME} {cts.SDIST_SHA256}\n")
    return dest


# The converter identifies a BPE pre-tokenizer by hashing the tokenizer's output on a fixed
# text; a freshly trained tokenizer has no known hash. This wrapper runs the unmodified
# converter with TextModel.get_vocab_base_pre replaced by a function returning the name the
# fixture's tokenizer was built to match.
CONVERT_WRAPPER = r"""
import sys
conv_dir, pre = sys.argv[1], sys.argv[2]
sys.path.insert(0, conv_dir)
sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[3:]
import convert_hf_to_gguf
from conversion import base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
convert_hf_to_gguf.main()
"""


def convert(model_dir: Path, outfile: Path, outtype: str, pre: str) -> None:
    conv = converter_dir()
    env = dict(os.environ, PYTHONPATH=str(conv / "gguf-py"))
    env.pop("NO_LOCAL_GGUF", None)
    cmd = [sys.executable, "-c", CONVERT_WRAPPER, str(conv), pre, str(model_dir),
           "--outfile", str(outfile), "--outtype", outtype]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-8000:])
        raise RuntimeError(f"convert_hf_to_gguf failed for {model_dir} ({outtype})")


# ------------------------------------------------------------------------------------------
# Tokenizer, model, transformers reference
# ------------------------------------------------------------------------------------------


def corpus_lines() -> list[str]:
    """Training text: llama.cpp's README.md and docs/*.md from the pinned (sha256-checked) sdist,
    so the tokenizers, and with them the fixtures, are reproducible."""
    conv = converter_dir()
    files = [conv / "README.md"] + sorted((conv / "docs").rglob("*.md"))
    lines = []
    for f in files:
        lines.extend(x for x in f.read_text(encoding="utf-8").splitlines() if x.strip())
    return lines


def train_tokenizer(pre: str, out_dir: Path):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    if pre == "llama-bpe":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(REGEX_LLAMA3), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    elif pre == "qwen2":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(REGEX_QWEN2), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:  # gpt-2, olmo: the GPT-2 regex, which ByteLevel(use_regex=True) applies
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    specials = ["<|endoftext|>", "<|pad|>"]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    assert tok.get_vocab_size() == VOCAB_SIZE, tok.get_vocab_size()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", pad_token="<|pad|>",
                                   clean_up_tokenization_spaces=False)
    fast.save_pretrained(out_dir)
    return fast


def model_config(name: str) -> dict:
    spec = MODELS[name]
    if "base" in spec:
        cfg = dict(MODELS[spec["base"]]["config"])
        cfg.update(spec["config_update"])
        return cfg
    return dict(spec["config"])


def build_model(name: str, tok, out_dir: Path):
    import torch
    import transformers

    spec = MODELS[name]
    cfg_kw = model_config(name)
    cls = getattr(transformers, spec["cls"])
    cfg_cls = cls.config_class
    cfg = cfg_cls(vocab_size=VOCAB_SIZE, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id, initializer_range=INIT_STD, **cfg_kw)
    cfg._attn_implementation = "eager"
    seed = SEED + int(hashlib.sha256(name.encode()).hexdigest()[:6], 16)
    torch.manual_seed(seed)
    model = cls(cfg).float().eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.ndim == 1:
                if pname.endswith("A_log") or pname.endswith(".D") or "dt_proj.bias" in pname:
                    continue  # Mamba's SSM parameters keep their (meaningful) default init
                if "bias" in pname:
                    p.normal_(0.0, 0.05)
                else:  # norm weights: around 1, not exactly 1
                    p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif "gate.weight" in pname and "gate_proj" not in pname or pname.endswith("shared_expert_gate.weight"):
                p.normal_(0.0, spec.get("router_std", ROUTER_STD))  # routers, shared-expert gate
            elif "conv1d" in pname:
                p.normal_(0.0, 0.3)
            else:
                p.normal_(0.0, INIT_STD)
        if getattr(cfg, "tie_word_embeddings", False):
            model.tie_weights()
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return model, cfg, seed


def apply_hf_fixes(model, cfg) -> list[str]:
    """Corrections applied to the transformers model before it serves as the oracle.

    DeepseekV2 with YaRN: transformers 4.57.6's native DeepseekV2Attention uses
    scaling = qk_head_dim**-0.5 and omits DeepSeek's softmax-scale factor
    mscale(factor, mscale_all_dim)**2 (mscale = 0.1 * mscale_all_dim * ln(factor) + 1), which
    DeepSeek's own modeling_deepseek.py, vLLM and llama.cpp (deepseek2.cpp folds it into
    kq_scale) apply; transformers fixed it later (huggingface/transformers PR #47435, "Fix yarn
    `mscale_all_dim` for DeepSeek v2 and Mistral 4"). With the factor applied here, llama.cpp and
    transformers agree to float32 rounding; without it they differ by ~9% of the logit range.
    """
    import math

    fixes = []
    rs = getattr(cfg, "rope_scaling", None)
    if cfg.model_type == "deepseek_v2" and rs and rs.get("mscale_all_dim") and rs.get("factor", 1) > 1:
        mscale = 0.1 * rs["mscale_all_dim"] * math.log(rs["factor"]) + 1.0
        for layer in model.model.layers:
            layer.self_attn.scaling *= mscale * mscale
        fixes.append(f"DeepseekV2Attention.scaling *= mscale**2 = {mscale * mscale:.6f} "
                     "(YaRN mscale_all_dim; transformers PR #47435)")
    return fixes


def group_rule_disagreements(model, cfg, ids) -> dict | None:
    """DeepSeek-V2 group-limited routing: transformers picks the top groups by each group's
    *max* score, llama.cpp (llama-graph.cpp, build_moe_ffn) by the *sum of the top 2* scores
    (DeepSeek-V3's rule). Count the (token, layer) pairs where the two rules pick different
    groups on this fixture's sequence, so one knows whether it can tell the rules apart."""
    import torch

    if cfg.model_type != "deepseek_v2" or not cfg.n_group or cfg.n_group <= 1:
        return None
    seen = []

    def hook(mod, args):
        seen.append(args[0].detach().reshape(-1, args[0].shape[-1]).float())

    hs = [layer.mlp.gate.register_forward_pre_hook(hook) for layer in model.model.layers
          if hasattr(layer.mlp, "gate")]
    with torch.no_grad():
        model(ids)
    for h in hs:
        h.remove()
    differ = total = 0
    for layer, x in zip([layer for layer in model.model.layers if hasattr(layer.mlp, "gate")], seen):
        scores = torch.softmax(x @ layer.mlp.gate.weight.float().T, dim=-1)
        g = scores.view(scores.shape[0], cfg.n_group, -1)
        by_max = torch.topk(g.max(-1).values, cfg.topk_group, dim=-1).indices.sort(-1).values
        by_top2 = torch.topk(g.topk(2, dim=-1).values.sum(-1), cfg.topk_group, dim=-1).indices.sort(-1).values
        differ += int((by_max != by_top2).any(-1).sum())
        total += scores.shape[0]
    return dict(token_layer_pairs=total, group_choice_differs=differ)


def logits_with_llama_cpp_group_rule(model, cfg, ids):
    """transformers' logits with DeepSeek group-limited routing switched to llama.cpp's group
    score (sum of the two best expert scores of a group instead of the best one): shows whether
    a llama.cpp-vs-transformers difference is the group rule and nothing else."""
    import torch
    import transformers.models.deepseek_v2.modeling_deepseek_v2 as mod

    if cfg.model_type != "deepseek_v2" or not cfg.n_group or cfg.n_group <= 1:
        return None

    def forward(self, hidden_states):
        b, s, h = hidden_states.shape
        scores = torch.nn.functional.linear(hidden_states.view(-1, h).float(), self.weight.float()).softmax(-1)
        groups = scores.view(b * s, self.num_group, -1)
        chosen = torch.topk(groups.topk(2, dim=-1).values.sum(-1), k=self.topk_group, dim=-1).indices
        mask = torch.zeros(b * s, self.num_group, dtype=torch.bool).scatter_(1, chosen, True)
        mask = mask.unsqueeze(-1).expand_as(groups).reshape(b * s, -1)
        weight, idx = torch.topk(scores.masked_fill(~mask, 0.0), k=self.top_k, dim=-1, sorted=False)
        return idx, weight * self.routed_scaling_factor

    saved = mod.DeepseekV2MoEGate.forward
    mod.DeepseekV2MoEGate.forward = forward
    try:
        with torch.no_grad():
            return model(ids).logits[0].float().numpy()
    finally:
        mod.DeepseekV2MoEGate.forward = saved


def reference(model, prompt: list[int]) -> dict:
    import torch

    ids = torch.tensor([prompt], dtype=torch.long)
    with torch.no_grad():
        logits = model(ids).logits[0].float().numpy()
        gen = model.generate(ids, max_new_tokens=N_GREEDY, min_new_tokens=N_GREEDY, do_sample=False,
                             eos_token_id=None, pad_token_id=model.config.pad_token_id,
                             num_beams=1, temperature=None, top_p=None, top_k=None)
        greedy = gen[0, len(prompt):].tolist()
        # Full-sequence forward: top-1/top-2 margin at every greedy step (near ties explain
        # divergent continuations of quantized files).
        full = model(gen).logits[0].float().numpy()
    margins = []
    for i in range(N_GREEDY):
        row = full[len(prompt) - 1 + i]
        top2 = sorted(row)[-2:]
        assert int(row.argmax()) == greedy[i], "generate() and the full forward disagree"
        margins.append(float(top2[1] - top2[0]))
    return dict(logits=logits, greedy=greedy, margins=margins,
                continuation_logits=full[len(prompt) - 1:len(prompt) - 1 + N_GREEDY])


def make_prompt(tok, name: str) -> list[int]:
    text = "Roost serves RWKV and MoE models from GGUF files on small devices."
    ids = tok.encode(text, add_special_tokens=False)
    import random
    rng = random.Random(SEED + len(name))
    while len(ids) < PROMPT_LEN:
        ids.append(rng.randrange(2, VOCAB_SIZE))
    return [int(x) for x in ids[:PROMPT_LEN]]


# ------------------------------------------------------------------------------------------
# llama.cpp worker (runs under .venv-bench: no torch, no transformers)
# ------------------------------------------------------------------------------------------

QUANT_FTYPES = {"q4_0": 2, "q8_0": 7, "q4_k_m": 15, "q4_k_s": 14}


def worker(job_path: str) -> None:
    import ctypes

    import llama_cpp
    import numpy as np

    job = json.loads(Path(job_path).read_text())
    out: dict = {"llama_cpp_version": llama_cpp.__version__}
    if job["op"] == "quantize":
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = QUANT_FTYPES[job["type"]]
        params.pure = bool(job.get("pure", False))
        params.nthread = int(job.get("threads", 2))
        rc = llama_cpp.llama_model_quantize(job["src"].encode(), job["dst"].encode(), ctypes.byref(params))
        out["rc"] = int(rc)
    elif job["op"] == "eval":
        llm = llama_cpp.Llama(model_path=job["model"], n_ctx=128, n_batch=128, n_ubatch=128,
                              logits_all=True, n_threads=int(job.get("threads", 2)),
                              verbose=False, seed=0, type_k=0, type_v=0)  # F32 KV cache
        prompt = job["prompt"]
        llm.reset()
        llm.eval(prompt)
        logits = np.array(llm.scores[: len(prompt)], dtype=np.float32)
        greedy = []
        nxt = int(logits[-1].argmax())
        for _ in range(job["n_greedy"]):
            greedy.append(nxt)
            llm.eval([nxt])
            nxt = int(np.asarray(llm.scores[llm.n_tokens - 1]).argmax())
        # Teacher-forced logits along the reference continuation, for a comparison that does
        # not depend on near-tie greedy choices.
        llm.reset()
        seq = prompt + job["ref_greedy"]
        llm.eval(seq)
        forced = np.array(llm.scores[len(prompt) - 1: len(seq) - 1], dtype=np.float32)
        toks = {}
        for text in job.get("texts", []):
            toks[text] = llm.tokenize(text.encode(), add_bos=False, special=False)
        np.save(job["logits_out"], logits)
        np.save(job["forced_out"], forced)
        out.update(greedy=greedy, tokenize=toks)
    Path(job["result"]).write_text(json.dumps(out))


def run_worker(job: dict, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    jp = work / f"job-{time.monotonic_ns()}.json"
    job["result"] = str(jp.with_suffix(".out.json"))
    jp.write_text(json.dumps(job))
    r = subprocess.run([str(BENCH_PY), str(Path(__file__).resolve()), "worker", str(jp)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-2000:] + r.stderr[-6000:])
        raise RuntimeError(f"llama.cpp worker failed: {job['op']} {job.get('model', job.get('src'))}")
    return json.loads(Path(job["result"]).read_text())


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def gguf_tensor_table(path: Path) -> list[dict]:
    conv = converter_dir()
    sys.path.insert(0, str(conv / "gguf-py"))
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    return [dict(name=t.name, shape=[int(x) for x in t.shape], type=t.tensor_type.name) for t in r.tensors]


def gguf_metadata(path: Path) -> dict:
    from gguf import GGUFReader, GGUFValueType

    r = GGUFReader(str(path))
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k.startswith("general.") and k not in ("general.architecture",
                                                                          "general.file_type"):
            continue
        t = f.types[0]
        if t == GGUFValueType.ARRAY and len(f.data) > 8:
            meta[k] = f"<array of {len(f.data)}>"
        elif t == GGUFValueType.ARRAY:
            meta[k] = [f.parts[i].tolist()[0] if f.types[-1] != GGUFValueType.STRING
                       else bytes(f.parts[i]).decode() for i in f.data]
        elif t == GGUFValueType.STRING:
            meta[k] = bytes(f.parts[f.data[0]]).decode()
        else:
            v = f.parts[f.data[0]].tolist()[0]
            meta[k] = round(v, 7) if isinstance(v, float) else v
    return meta


def compare(ref, got) -> dict:
    import numpy as np

    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    diff = np.abs(ref - got)
    scale = np.abs(ref).max()
    return dict(max_abs=float(diff.max()), max_rel=float(diff.max() / scale),
                rms=float(np.sqrt((diff ** 2).mean())), logit_scale=float(scale),
                argmax_agree=int((ref.argmax(-1) == got.argmax(-1)).sum()), positions=int(ref.shape[0]))


def fmt(x: float) -> float:
    return float(f"{x:.7g}")


def write_expected(path: Path, expected: dict) -> None:
    """One top-level key per line, values compact (the logits tables dominate the size)."""
    lines = [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in expected.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def llama_cpp_logits(model_work: Path, types: list[str]) -> dict:
    """llama.cpp's prompt logits (every position) per committed type: the second reference,
    the one to compare a quantized file against (it includes llama.cpp's rounding of
    activations to Q8 for quantized matrix products)."""
    import numpy as np

    out = {}
    for t in types:
        if t == "f32":  # equal to transformers' within ~2e-6 (see llama_cpp.f32): not repeated
            continue
        lg = np.load(model_work / f"model-{t}.logits.npy")
        out[t] = [[fmt(v) for v in row] for row in lg.tolist()]
    return out


def make_one(name: str, work: Path, out_root: Path, keep_all: bool) -> dict:
    import numpy as np
    import torch
    import transformers

    spec = MODELS[name]
    mdir = work / name / "hf"
    if mdir.exists():
        shutil.rmtree(mdir)
    mdir.mkdir(parents=True)
    tok = train_tokenizer(spec["pre"], mdir)
    model, cfg, seed = build_model(name, tok, mdir)
    prompt = make_prompt(tok, name)
    unfixed_logits = None
    fixes = []
    if cfg.model_type == "deepseek_v2" and getattr(cfg, "rope_scaling", None):
        with torch.no_grad():
            unfixed_logits = model(torch.tensor([prompt])).logits[0].float().numpy()
    fixes = apply_hf_fixes(model, cfg)
    ref = reference(model, prompt)
    group_rules = group_rule_disagreements(model, cfg, torch.tensor([prompt + ref["greedy"]]))
    rule_logits = logits_with_llama_cpp_group_rule(model, cfg, torch.tensor([prompt]))
    texts = ["Roost serves RWKV and MoE models from GGUF files.",
             "  hello world 12345 don't STOP\n\n\tx = f(y)  # 3.14"]
    hf_tok = {t: tok.encode(t, add_special_tokens=False) for t in texts}

    ggufs = {}
    f32 = work / name / "model-f32.gguf"
    convert(mdir, f32, "f32", spec["pre"])
    ggufs["f32"] = f32
    for t in spec["types"]:
        if t in ("f16", "q8_0"):
            p = work / name / f"model-{t}.gguf"
            convert(mdir, p, t, spec["pre"])
            ggufs[t] = p
        elif t in QUANT_FTYPES:
            p = work / name / f"model-{t}.gguf"
            res = run_worker(dict(op="quantize", src=str(f32), dst=str(p), type=t,
                                  pure=(t == "q4_0")), work / "jobs")
            if res["rc"] != 0:
                raise RuntimeError(f"llama_model_quantize {t} failed for {name}: {res['rc']}")
            ggufs[t] = p

    results = {}
    for t, p in ggufs.items():
        job = dict(op="eval", model=str(p), prompt=prompt, n_greedy=N_GREEDY, ref_greedy=ref["greedy"],
                   texts=texts, logits_out=str(p.with_suffix(".logits.npy")),
                   forced_out=str(p.with_suffix(".forced.npy")))
        res = run_worker(job, work / "jobs")
        lg = np.load(job["logits_out"])
        forced = np.load(job["forced_out"])
        cmp_prompt = compare(ref["logits"], lg)
        cmp_forced = compare(ref["continuation_logits"], forced)
        first_div = next((i for i, (a, b) in enumerate(zip(ref["greedy"], res["greedy"])) if a != b), None)
        tensors = gguf_tensor_table(p)
        types = sorted({x["type"] for x in tensors})
        results[t] = dict(
            file=p.name, bytes=p.stat().st_size, tensor_types=types,
            prompt_logits=cmp_prompt, continuation_logits_teacher_forced=cmp_forced,
            greedy=res["greedy"], greedy_matches=res["greedy"] == ref["greedy"],
            greedy_first_divergence=first_div,
            tokenizer_matches_hf=all(res["tokenize"][x] == hf_tok[x] for x in texts),
            llama_cpp_version=res["llama_cpp_version"])
        print(f"  {name:24s} {t:7s} {p.stat().st_size/1024:8.1f} KiB  max_abs {cmp_prompt['max_abs']:.3g}"
              f"  max_rel {cmp_prompt['max_rel']:.3g}  forced_rel {cmp_forced['max_rel']:.3g}"
              f"  greedy {'=' if results[t]['greedy_matches'] else f'diverges@{first_div}'}"
              f"  tok {'ok' if results[t]['tokenizer_matches_hf'] else 'DIFF'}", flush=True)

    # Recommended tolerances: measured llama.cpp-vs-transformers difference with head room
    # (x4, floored), per type; relative to the largest |logit|.
    tolerances = {}
    if rule_logits is not None:
        group_rules["transformers_vs_llama_cpp_f32"] = compare(ref["logits"], np.load(
            ggufs["f32"].with_suffix(".logits.npy")))
        group_rules["transformers_with_llama_cpp_rule_vs_llama_cpp_f32"] = compare(rule_logits, np.load(
            ggufs["f32"].with_suffix(".logits.npy")))
    for t, r in results.items():
        worst_rel = max(r["prompt_logits"]["max_rel"], r["continuation_logits_teacher_forced"]["max_rel"])
        worst_abs = max(r["prompt_logits"]["max_abs"], r["continuation_logits_teacher_forced"]["max_abs"])
        if rule_logits is not None and t == "f32":
            # llama.cpp's F32 difference here is its group rule, not precision (see
            # deepseek_group_rules): recommend the precision tolerance measured with the rule
            # matched, for implementations that follow transformers (DeepSeek-V2's rule).
            m = group_rules["transformers_with_llama_cpp_rule_vs_llama_cpp_f32"]
            worst_rel, worst_abs = m["max_rel"], m["max_abs"]
        floor_rel = {"f32": 1e-4, "f16": 2e-3}.get(t, 1e-2)
        tolerances[t] = dict(max_abs=fmt(max(4 * worst_abs, floor_rel * r["prompt_logits"]["logit_scale"])),
                             max_rel=fmt(max(4 * worst_rel, floor_rel)))

    dest = out_root / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    committed = list(ggufs) if keep_all else spec["commit"]
    for t in committed:
        shutil.copy2(ggufs[t], dest / ggufs[t].name)
    f32_tensors = gguf_tensor_table(f32)
    expected = dict(
        name=name, hf_class=spec["cls"], gguf_architecture=spec["arch"], tokenizer_pre=spec["pre"],
        transformers_version=transformers.__version__, torch_version=torch.__version__,
        converter="convert_hf_to_gguf.py from llama-cpp-python 0.3.36 sdist (vendor/llama.cpp)",
        seed=seed, init_std=INIT_STD, router_std=spec.get("router_std", ROUTER_STD),
        config=json.loads(cfg.to_json_string(use_diff=False)),
        vocab_size=VOCAB_SIZE, prompt_ids=prompt,
        logits_positions=list(range(len(prompt))),
        logits=[[fmt(v) for v in row] for row in ref["logits"].tolist()],
        greedy_ids=ref["greedy"], greedy_top2_margins=[fmt(m) for m in ref["margins"]],
        tokenizer_samples={t: hf_tok[t] for t in texts},
        transformers_fixes=fixes,
        unfixed_transformers_vs_fixed=(compare(ref["logits"], unfixed_logits) if unfixed_logits is not None
                                       else None),
        unfixed_transformers_vs_llama_cpp_f32=(compare(unfixed_logits, np.load(ggufs["f32"].with_suffix(
            ".logits.npy"))) if unfixed_logits is not None else None),
        deepseek_group_rules=group_rules,
        files={t: results[t]["file"] for t in committed},
        llama_cpp=results, recommended_tolerances=tolerances,
        llama_cpp_logits=llama_cpp_logits(work / name, committed),
        gguf_metadata=gguf_metadata(f32), gguf_tensors_f32=f32_tensors)
    write_expected(dest / "expected.json", expected)
    return expected


TABLE_BEGIN = "<!-- agreement:begin (written by tools/make_transformer_fixtures.py) -->"
TABLE_END = "<!-- agreement:end -->"


def agreement_table(out_root: Path) -> str:
    """Markdown table of the measured llama.cpp-vs-transformers agreement, from expected.json."""
    rows = ["| model | type | committed | size KiB | prompt max abs | prompt max rel | teacher-forced max rel "
            "| argmax agree | greedy 32 | tensor types |",
            "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for name in MODELS:
        f = out_root / name / "expected.json"
        if not f.exists():
            continue
        e = json.loads(f.read_text())
        for t, r in e["llama_cpp"].items():
            pl, fc = r["prompt_logits"], r["continuation_logits_teacher_forced"]
            greedy = "same" if r["greedy_matches"] else f"differs from #{r['greedy_first_divergence']}"
            rows.append(f"| {name} | {t} | {'yes' if t in e['files'] else 'no'} | {r['bytes'] / 1024:.0f} "
                        f"| {pl['max_abs']:.2g} | {pl['max_rel']:.2g} | {fc['max_rel']:.2g} "
                        f"| {pl['argmax_agree'] + fc['argmax_agree']}/{pl['positions'] + fc['positions']} "
                        f"| {greedy} | {', '.join(r['tensor_types'])} |")
    return "\n".join(rows)


def update_readme(out_root: Path) -> None:
    readme = out_root / "README.md"
    if not readme.exists():
        return
    text = readme.read_text()
    if TABLE_BEGIN not in text or TABLE_END not in text:
        return
    head, rest = text.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    readme.write_text(head + TABLE_BEGIN + "\n" + agreement_table(out_root) + "\n" + TABLE_END + tail)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "worker":
        worker(argv[1])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated model names (default: all)")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--work", type=Path, default=REPO / ".run" / "transformer-fixtures")
    ap.add_argument("--keep-all", action="store_true", help="copy every generated type, not only the committed ones")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(MODELS))
        return 0
    if not BENCH_PY.exists():
        print(f"{BENCH_PY} missing: llama-cpp-python 0.3.36 (.venv-bench) quantizes and checks the files",
              file=sys.stderr)
        return 2
    names = [n for n in args.only.split(",") if n] or list(MODELS)
    for n in names:
        if n not in MODELS:
            ap.error(f"unknown model {n}; --list shows them")
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for n in names:
        t0 = time.time()
        exp = make_one(n, args.work, args.out, args.keep_all)
        summary[n] = {t: dict(bytes=r["bytes"], committed=t in exp["files"], tensor_types=r["tensor_types"],
                              prompt_max_abs=fmt(r["prompt_logits"]["max_abs"]),
                              prompt_max_rel=fmt(r["prompt_logits"]["max_rel"]),
                              forced_max_rel=fmt(r["continuation_logits_teacher_forced"]["max_rel"]),
                              greedy_matches=r["greedy_matches"],
                              greedy_first_divergence=r["greedy_first_divergence"],
                              tokenizer_matches_hf=r["tokenizer_matches_hf"])
                      for t, r in exp["llama_cpp"].items()}
        print(f"{n}: {time.time() - t0:.1f}s", flush=True)
    summary = {k: summary[k] for k in MODELS if k in summary}
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    update_readme(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
