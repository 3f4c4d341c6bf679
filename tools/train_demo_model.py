#!/usr/bin/env python3
"""Train Roost's bundled demo model, a small RWKV-7, and write models/roost-demo.gguf.

Text: the King James Version of the Bible (1611), public domain, as Debian's `bible-kjv-text`
package ships it (read through the `bible` command of the `bible-kjv` package, version 4.38:
`apt-get install bible-kjv`). /usr/share/doc/bible-kjv-text/copyright: "The copyright for the
King James Version text of the Bible is expired since the translation was done in 1611"; the
retrieval program around it is GPL-2+, but only the text is used here. (In the United Kingdom
the KJV is under a perpetual Crown patent; everywhere else it is in the public domain.)

The text is used two ways, each about half of the training stream:
  - plain text: each chapter, one verse per line;
  - dialogues in the RWKV World chat convention that roostd uses for models without a chat
    template ("User: ...\\n\\nAssistant: ...\\n\\n"): "Recite Genesis 1:3." -> the verse;
    a verse and "What comes next?" -> the next verse; "Give me a proverb." -> a verse of
    Proverbs 10-29; "Read me a verse from the Psalms." -> a verse of the Psalms;
    "Read me the beginning of John 3." -> the first verses of the chapter.

Tokenizer: the RWKV World vocabulary (65536 tokens, `rwkv` package, as make_synthetic.py
writes it). A 65536 x C embedding and head in 8 MB forces a small width: C = 64 (2 heads of
32), 6 layers, F = 256. Only the ~9,500 tokens that occur in the text are trained (the
softmax runs over them); in the file the embedding rows of the other tokens are zero and their
head rows give a logit of -40 through a constant channel: channel 0 of the output LayerNorm
has weight 0 and bias 8 (fixed during training), so column 0 of the head acts as a per-token
bias. Storage: token_embd Q4_0, output Q5_0, the layer matrices F16, vectors F32 (the
time_mix_w1/w2 LoRAs F32 as llama.cpp's converter keeps them).

The model code below is this repository's RWKV-7 as Roost runs it (Sources/Models/RWKV/
RWKVForward.swift, `timeMix7` and `channelMix`), written in torch for training.

Training runs on the CPU with at most 2 threads under `nice`; it checkpoints to --work every
minute and resumes from there; the learning rate follows the elapsed share of --minutes.

    apt-get install bible-kjv
    python3 -m venv .venv-fixtures && .venv-fixtures/bin/pip install -r tools/requirements-fixtures.txt
    nice -n 19 .venv-fixtures/bin/python tools/train_demo_model.py --minutes 25

Afterwards it writes the GGUF (--out) and Tests/Fixtures/demo-model-expected.json: for a few
prompts, the top-20 logits and the argmax of the torch model, run with the weights as stored
(dequantized with gguf-py) and the head's input rounded to Q8_0 as Roost's quantized matrix
products do. `--export-only` skips training and exports the last checkpoint.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import make_synthetic as ms  # noqa: E402  (the GGUF layout and writer)
import world_vocab_to_gguf_tokens as wv  # noqa: E402

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import quants  # noqa: E402

CONFIG = dict(arch="rwkv7", n_layer=6, n_embd=64, head_size=32, n_ff=256, n_vocab=65536,
              lora_decay=16, lora_iclr=16, lora_value=8, lora_gate=32)
CONST_CHANNEL, CONST_VALUE, UNUSED_LOGIT = 0, 8.0, -40.0
NAME = "roost-demo"
LICENSE = "CC0-1.0"
SOURCE = ("King James Version of the Bible (1611, public domain), text of Debian's bible-kjv-text 4.38; "
          "trained by tools/train_demo_model.py")
DESCRIPTION = ("Roost's demo model: a 6-layer, 64-channel RWKV-7 with the RWKV World vocabulary, trained "
               "for about 25 CPU minutes on the King James Bible (plain text and User/Assistant dialogues). "
               "It writes Bible-like English; it knows nothing else.")
PROMPTS = [
    "In the beginning God created",
    "User: Give me a proverb.\n\nAssistant:",
    "And the LORD spake unto Moses, saying,",
]

# ---- text ------------------------------------------------------------------------------------


def read_kjv() -> list[tuple[str, int, int, str]]:
    """(book, chapter, verse, text) for every verse, from the `bible` command (package bible-kjv)."""
    exe = shutil.which("bible")
    if exe is None:
        raise SystemExit("the `bible` command is missing: apt-get install bible-kjv")
    out = subprocess.run([exe, "-m", "8192", "-l", "100000", "Gen1:1-Rev22:21"], check=True,
                         capture_output=True, text=True).stdout
    verses, book, chapter = [], None, 0
    for line in out.splitlines():
        if not line.strip():
            continue
        m = re.fullmatch(r"(\S.*) (\d+)", line)
        if m and not line.startswith(" "):
            book, chapter = m.group(1), int(m.group(2))
            continue
        m = re.fullmatch(r"\s+(\d+) (.*)", line)
        assert m and book, f"unexpected line: {line!r}"
        verses.append((book, chapter, int(m.group(1)), " ".join(m.group(2).split())))
    assert len(verses) == 31102, len(verses)
    return verses


def documents(verses, rng: random.Random) -> list[str]:
    """One epoch of training documents (plain chapters and dialogues), shuffled."""
    docs: list[str] = []
    chapters: dict[tuple[str, int], list[str]] = {}
    for b, c, v, t in verses:
        chapters.setdefault((b, c), []).append(t)
    for (b, c), ts in chapters.items():
        docs.append("\n".join(ts) + "\n\n")
    turns: list[str] = []
    for i, (b, c, v, t) in enumerate(verses):
        kind = rng.random()
        if b == "Proverbs" and 10 <= c <= 29 and kind < 0.5:
            q = "Give me a proverb."
        elif b == "Psalms" and kind < 0.3:
            q = "Read me a verse from the Psalms."
        elif kind < 0.45 and i + 1 < len(verses) and verses[i + 1][:2] == (b, c):
            q, t = f"{t} What comes next?", verses[i + 1][3]
        elif kind < 0.8:
            q = f"Recite {b} {c}:{v}."
        elif v == 1:
            q = f"Read me the beginning of {b} {c}."
            t = " ".join(chapters[(b, c)][:3])
        else:
            continue
        turns.append(f"User: {q}\n\nAssistant: {t}\n\n")
    rng.shuffle(turns)
    i = 0
    while i < len(turns):  # conversations of 1-3 turns
        n = rng.randint(1, 3)
        docs.append("".join(turns[i:i + n]))
        i += n
    rng.shuffle(docs)
    return docs


def token_stream(work: str, epochs: int = 4) -> np.ndarray:
    """The tokenized training stream (cached in work/stream.npy): `epochs` differently shuffled
    epochs of documents, concatenated."""
    path = os.path.join(work, "stream.npy")
    if os.path.exists(path):
        return np.load(path)
    tok = wv.load_reference_tokenizer()
    verses = read_kjv()
    parts = []
    for e in range(epochs):
        docs = documents(verses, random.Random(1000 + e))
        parts.append(np.array(tok.encode("".join(docs)), dtype=np.int32))
        print(f"epoch {e}: {len(docs)} documents, {len(parts[-1])} tokens", file=sys.stderr, flush=True)
    stream = np.concatenate(parts)
    np.save(path, stream)
    return stream


# ---- the model (torch) -------------------------------------------------------------------------


def build_torch():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, i: int, p: dict):
            super().__init__()
            C, Fd, L = p["n_embd"], p["n_ff"], p["n_layer"]
            self.H, self.N = C // p["head_size"], p["head_size"]
            self.first = i == 0
            r01 = i / (L - 1)
            r10 = 1.0 - i / L
            ddd = torch.arange(C, dtype=torch.float32) / C
            self.ln1 = nn.LayerNorm(C, eps=1e-5)
            self.ln2 = nn.LayerNorm(C, eps=1e-5)
            # lerp order r, w, k, v, a, g (time_mix_lerp_fused)
            self.lerp = nn.Parameter(torch.stack([1 - ddd ** (e * r10) for e in (0.2, 0.9, 0.7, 0.7, 0.9, 0.2)]))
            n = torch.arange(C, dtype=torch.float32) / (C - 1)
            self.w0 = nn.Parameter(-7 + 5 * n ** (0.85 + r01 ** 0.5) + 0.5)
            self.a0 = nn.Parameter(torch.zeros(C))
            self.v0 = nn.Parameter(torch.ones(C))
            self.k_k = nn.Parameter(torch.full((C,), 0.85))
            self.k_a = nn.Parameter(torch.ones(C))
            self.r_k = nn.Parameter(torch.zeros(C))

            def lora(rank: int):
                a, b = nn.Linear(C, rank, bias=False), nn.Linear(rank, C, bias=False)
                nn.init.zeros_(a.weight)
                nn.init.orthogonal_(b.weight, gain=0.1)
                return a, b
            self.w1, self.w2 = lora(p["lora_decay"])
            self.a1, self.a2 = lora(p["lora_iclr"])
            # layer 0 has no value residual; the file still carries v0/v1/v2 there (iclr rank)
            self.v1, self.v2 = lora(p["lora_iclr"] if self.first else p["lora_value"])
            self.g1, self.g2 = lora(p["lora_gate"])
            self.r = nn.Linear(C, C, bias=False)
            self.k = nn.Linear(C, C, bias=False)
            self.v = nn.Linear(C, C, bias=False)
            self.o = nn.Linear(C, C, bias=False)
            for m in (self.r, self.k, self.v):
                nn.init.uniform_(m.weight, -0.5 / C ** 0.5, 0.5 / C ** 0.5)
            nn.init.zeros_(self.o.weight)
            self.ln_x_w = nn.Parameter(torch.full((C,), ((1 + i) / L) ** 0.7))
            self.ln_x_b = nn.Parameter(torch.zeros(C))
            self.ffn_lerp = nn.Parameter(1 - ddd ** (r10 ** 4))
            self.ffn_k = nn.Linear(C, Fd, bias=False)
            self.ffn_v = nn.Linear(Fd, C, bias=False)
            nn.init.orthogonal_(self.ffn_k.weight)
            nn.init.zeros_(self.ffn_v.weight)

        def time_mix(self, x, v_first):
            B, T, C = x.shape
            H, N = self.H, self.N
            xn = self.ln1(x)
            sx = F.pad(xn, (0, 0, 1, -1)) - xn  # previous token's xn (zero before the first) - xn
            xr, xw, xk, xv, xa, xg = (xn + sx * self.lerp[j] for j in range(6))
            r, k, v = self.r(xr), self.k(xk), self.v(xv)
            w = torch.exp(-0.606531 * torch.sigmoid(self.w0 + self.w2(torch.tanh(self.w1(xw)))))
            a = torch.sigmoid(self.a0 + self.a2(self.a1(xa)))
            g = self.g2(torch.sigmoid(self.g1(xg)))
            if self.first:
                v_first = v
            else:
                v = v + (v_first - v) * torch.sigmoid(self.v0 + self.v2(self.v1(xv)))
            kk = F.normalize((k * self.k_k).view(B, T, H, N), dim=-1, eps=1e-12).view(B, T, C)
            k = k * (1 + (a - 1) * self.k_a)
            aa, bb = -kk, kk * a
            # WKV: per head, S[i][j] <- S[i][j] w[j] + (S a)[i] b[j] + v[i] k[j]; out[i] = (S r)[i].
            # The same as S <- S M + v k^T with M = diag(w) + a b^T: one batched product per token.
            def heads(t):  # [B, T, C] -> [T, B*H, N]
                return t.view(B, T, H, N).permute(1, 0, 2, 3).reshape(T, B * H, N)
            rs, ws, ks, vs, as_, bs = (heads(t) for t in (r, w, k, v, aa, bb))
            M = torch.diag_embed(ws) + as_[..., :, None] * bs[..., None, :]  # [T, BH, N, N]
            VK = vs[..., :, None] * ks[..., None, :]
            S = x.new_zeros(B * H, N, N)
            states = []
            # unbind, not M[t]: the backward of one select per token would fill a whole [T, ...] zero tensor
            for vk_t, m_t in zip(VK.unbind(0), M.unbind(0)):
                S = torch.baddbmm(vk_t, S, m_t)
                states.append(S)
            out = (torch.stack(states) @ rs[..., None]).squeeze(-1)  # [T, BH, N]
            out = out.view(T, B, H, N).permute(1, 0, 2, 3)  # B T H N
            out = F.group_norm(out.reshape(B * T, C), H, self.ln_x_w, self.ln_x_b, eps=64e-5).view(B, T, C)
            bonus = ((r * k * self.r_k).view(B, T, H, N).sum(-1, keepdim=True) * v.view(B, T, H, N)).view(B, T, C)
            return self.o((out + bonus) * g), v_first

        def channel_mix(self, x):
            xn = self.ln2(x)
            sx = F.pad(xn, (0, 0, 1, -1)) - xn
            return self.ffn_v(torch.relu(self.ffn_k(xn + sx * self.ffn_lerp)) ** 2)

        def forward(self, x, v_first):
            dx, v_first = self.time_mix(x, v_first)
            x = x + dx
            return x + self.channel_mix(x), v_first

    class RWKV7(nn.Module):
        """Over a sub-vocabulary of U used tokens (local ids)."""

        def __init__(self, p: dict, used: int):
            super().__init__()
            C = p["n_embd"]
            self.emb = nn.Embedding(used, C)
            nn.init.uniform_(self.emb.weight, -1e-4, 1e-4)
            self.ln0 = nn.LayerNorm(C, eps=1e-5)
            self.blocks = nn.ModuleList([Block(i, p) for i in range(p["n_layer"])])
            self.ln_out = nn.LayerNorm(C, eps=1e-5)
            self.head = nn.Linear(C, used, bias=False)
            nn.init.normal_(self.head.weight, std=0.5 / C ** 0.5)
            with torch.no_grad():
                self.head.weight[:, CONST_CHANNEL] = 0
            mask = torch.ones(C)
            mask[CONST_CHANNEL] = 0
            self.register_buffer("const_mask", mask)

        def out_norm(self):
            """(weight, bias) of the output LayerNorm with the constant channel fixed."""
            onehot = 1 - self.const_mask
            return (self.ln_out.weight * self.const_mask,
                    self.ln_out.bias * self.const_mask + CONST_VALUE * onehot)

        def hidden(self, idx):
            x = self.ln0(self.emb(idx))
            v_first = None
            for b in self.blocks:
                x, v_first = b(x, v_first)
            w, bias = self.out_norm()
            return F.layer_norm(x, (x.shape[-1],), w, bias, eps=1e-5)

        def forward(self, idx):
            return self.head(self.hidden(idx))

    return torch, RWKV7


# ---- training ----------------------------------------------------------------------------------


def train(args, stream: np.ndarray, used: np.ndarray) -> None:
    torch, RWKV7 = build_torch()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    remap = np.full(65536, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    local = torch.from_numpy(remap[stream])
    model = RWKV7(CONFIG, len(used))
    decay, no_decay = [], []
    for name, prm in model.named_parameters():
        (decay if prm.dim() == 2 and "emb" not in name else no_decay).append(prm)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
    ckpt = os.path.join(args.work, "checkpoint.pt")
    step, elapsed, tokens_seen = 0, 0.0, 0
    if os.path.exists(ckpt):
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, elapsed, tokens_seen = st["step"], st["elapsed"], st["tokens"]
        print(f"resumed at step {step}, {elapsed / 60:.1f} min, {tokens_seen} tokens", file=sys.stderr)
    budget = args.minutes * 60
    B, T = args.batch, args.ctx
    gen = torch.Generator().manual_seed(12345 + step)
    last_save = time.time()
    t_log, tok_log = time.time(), 0
    ema = None
    while elapsed < budget:
        t0 = time.time()
        frac = elapsed / budget
        warm = min(1.0, (step + 1) / 50)
        lr = args.lr_final + (args.lr - args.lr_final) * 0.5 * (1 + math.cos(math.pi * frac))
        for gr in opt.param_groups:
            gr["lr"] = lr * warm
        starts = torch.randint(0, len(local) - T - 1, (B,), generator=gen)
        batch = torch.stack([local[s:s + T + 1] for s in starts.tolist()])
        logits = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += B * T
        tok_log += B * T
        elapsed += time.time() - t0
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 20 == 0:
            now = time.time()
            print(f"step {step} loss {loss.item():.3f} (avg {ema:.3f}) lr {lr * warm:.2e} "
                  f"{tok_log / (now - t_log):.0f} tokens/s, {elapsed / 60:.1f}/{args.minutes} min, "
                  f"{tokens_seen / len(stream):.2f} passes over the stream", file=sys.stderr, flush=True)
            t_log, tok_log = now, 0
        if time.time() - last_save > 60 or elapsed >= budget:
            st = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed,
                  "tokens": tokens_seen, "loss_avg": ema}
            torch.save(st, ckpt + ".tmp")
            os.replace(ckpt + ".tmp", ckpt)
            last_save = time.time()
    print(f"training done: {step} steps, {elapsed / 60:.1f} min, {tokens_seen} tokens, loss (avg) {ema}",
          file=sys.stderr)


# ---- export ------------------------------------------------------------------------------------

Q8_BLOCK = 32


def f16(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def stored_arrays(model, used: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the file as float32 in numpy shape (reversed ggml ne), before storage rounding."""
    p = CONFIG
    C, V = p["n_embd"], p["n_vocab"]
    g = lambda t: t.detach().float().numpy().copy()  # noqa: E731
    out: dict[str, np.ndarray] = {}
    emb = np.zeros((V, C), np.float32)
    emb[used] = g(model.emb.weight)
    out["token_embd.weight"] = emb
    out["token_embd_norm.weight"] = g(model.ln0.weight)
    out["token_embd_norm.bias"] = g(model.ln0.bias)
    for i, b in enumerate(model.blocks):
        pre = f"blk.{i}"
        out[f"{pre}.attn_norm.weight"], out[f"{pre}.attn_norm.bias"] = g(b.ln1.weight), g(b.ln1.bias)
        out[f"{pre}.attn_norm_2.weight"], out[f"{pre}.attn_norm_2.bias"] = g(b.ln2.weight), g(b.ln2.bias)
        for nm, prm in (("w0", b.w0), ("a0", b.a0), ("v0", b.v0)):
            out[f"{pre}.time_mix_{nm}.weight"] = g(prm)
        for nm, lin in (("w1", b.w1), ("w2", b.w2), ("a1", b.a1), ("a2", b.a2), ("v1", b.v1), ("v2", b.v2),
                        ("g1", b.g1), ("g2", b.g2)):
            out[f"{pre}.time_mix_{nm}.weight"] = g(lin.weight)
        out[f"{pre}.time_mix_lerp_fused.weight"] = g(b.lerp).reshape(6, 1, 1, C)
        out[f"{pre}.time_mix_k_k.weight"] = g(b.k_k)
        out[f"{pre}.time_mix_k_a.weight"] = g(b.k_a)
        out[f"{pre}.time_mix_r_k.weight"] = g(b.r_k)
        out[f"{pre}.time_mix_key.weight"] = g(b.k.weight)
        out[f"{pre}.time_mix_value.weight"] = g(b.v.weight)
        out[f"{pre}.time_mix_receptance.weight"] = g(b.r.weight)
        out[f"{pre}.time_mix_ln.weight"], out[f"{pre}.time_mix_ln.bias"] = g(b.ln_x_w), g(b.ln_x_b)
        out[f"{pre}.time_mix_output.weight"] = g(b.o.weight)
        out[f"{pre}.channel_mix_lerp_k.weight"] = g(b.ffn_lerp).reshape(1, 1, C)
        out[f"{pre}.channel_mix_key.weight"] = g(b.ffn_k.weight)
        out[f"{pre}.channel_mix_value.weight"] = g(b.ffn_v.weight)
    w, bias = model.out_norm()
    out["output_norm.weight"], out["output_norm.bias"] = g(w), g(bias)
    head = np.zeros((V, C), np.float32)
    head[:, CONST_CHANNEL] = UNUSED_LOGIT / CONST_VALUE
    head[used] = g(model.head.weight)
    out["output.weight"] = head
    return out


def storage_types() -> list[tuple[int, "ms.TensorSpec"]]:
    """make_synthetic's tensor list for CONFIG (F16 matrices, F32 w1/w2, F32 vectors) with the
    embedding in Q4_0 and the head in Q5_0."""
    specs = ms.rwkv_specs(CONFIG, QT.F16, quantize_lora=False)
    for _, s in specs:
        if s.name == "token_embd.weight":
            s.qtype = QT.Q4_0
        elif s.name == "output.weight":
            s.qtype = QT.Q5_0
    return specs


def encode(values: np.ndarray, qt: QT) -> np.ndarray:
    if qt == QT.F32:
        return values.astype(np.float32)
    if qt == QT.F16:
        return f16(values)
    return quants.quantize(values.astype(np.float32), qt)


def write_gguf(model, used: np.ndarray, out_path: str) -> None:
    arrays = stored_arrays(model, used)
    specs = storage_types()
    for _, s in specs:
        assert arrays[s.name].shape == s.np_shape, (s.name, arrays[s.name].shape, s.np_shape)

    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".demo-", suffix=".gguf", dir=out_dir)
    os.close(fd)
    try:
        ms.write_rwkv(tmp, CONFIG, QT.F16, 0, NAME, specs=specs, data=lambda s: encode(arrays[s.name], s.qtype),
                      license=LICENSE, description=SOURCE,
                      extra_strings={"general.description": DESCRIPTION,
                                     "general.source.url": "debian:bible-kjv-text 4.38 (the text's package)"})
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)", file=sys.stderr)


def q8_0_round(x: np.ndarray) -> np.ndarray:
    """x rounded as Roost's quantize_q8_0_ref does (ggml's): per 32 values d = amax / 127 (kept as
    fp16), q = roundf(x / d) (half away from zero), x' = q * d."""
    x = x.astype(np.float32).reshape(-1, Q8_BLOCK)
    amax = np.abs(x).max(axis=1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = (x * inv).astype(np.float32)
    q = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return (q * d.astype(np.float16).astype(np.float32)).reshape(-1)


def load_stored(model, used: np.ndarray, path: str):
    """A torch model over the full vocabulary with the weights the file holds (dequantized)."""
    torch, RWKV7 = build_torch()
    r = gguf.GGUFReader(path)
    t = {x.name: x for x in r.tensors}

    def deq(name: str) -> np.ndarray:
        x = t[name]
        return quants.dequantize(x.data, x.tensor_type).reshape(tuple(reversed([int(n) for n in x.shape])))

    full = RWKV7(CONFIG, CONFIG["n_vocab"])
    sd = full.state_dict()
    names = {
        "emb.weight": "token_embd.weight", "ln0.weight": "token_embd_norm.weight", "ln0.bias": "token_embd_norm.bias",
        "ln_out.weight": "output_norm.weight", "ln_out.bias": "output_norm.bias", "head.weight": "output.weight",
    }
    for i in range(CONFIG["n_layer"]):
        pre, b = f"blk.{i}", f"blocks.{i}"
        m = {"ln1.weight": "attn_norm.weight", "ln1.bias": "attn_norm.bias", "ln2.weight": "attn_norm_2.weight",
             "ln2.bias": "attn_norm_2.bias", "w0": "time_mix_w0.weight", "a0": "time_mix_a0.weight",
             "v0": "time_mix_v0.weight", "k_k": "time_mix_k_k.weight", "k_a": "time_mix_k_a.weight",
             "r_k": "time_mix_r_k.weight", "lerp": "time_mix_lerp_fused.weight", "r.weight": "time_mix_receptance.weight",
             "k.weight": "time_mix_key.weight", "v.weight": "time_mix_value.weight", "o.weight": "time_mix_output.weight",
             "ln_x_w": "time_mix_ln.weight", "ln_x_b": "time_mix_ln.bias", "ffn_lerp": "channel_mix_lerp_k.weight",
             "ffn_k.weight": "channel_mix_key.weight", "ffn_v.weight": "channel_mix_value.weight"}
        for nm in ("w1", "w2", "a1", "a2", "v1", "v2", "g1", "g2"):
            m[f"{nm}.weight"] = f"time_mix_{nm}.weight"
        for k_, v_ in m.items():
            names[f"{b}.{k_}"] = f"{pre}.{v_}"
    for k_, v_ in names.items():
        sd[k_] = torch.from_numpy(np.ascontiguousarray(deq(v_), dtype=np.float32)).reshape(sd[k_].shape)
    full.load_state_dict(sd)
    # out_norm() re-imposes the constant channel; the stored values already have it
    return torch, full


def expected_logits(path: str, used: np.ndarray, out_json: str, top: int = 20) -> None:
    """Top-`top` logits and argmax of the stored model for PROMPTS (from the zero state), computed in torch:
    the hidden state in float32, the head product in float64 from the Q8_0-rounded input and the
    dequantized Q5_0 head (what Roost's Q5_0 x Q8_0 dot product computes, up to float rounding)."""
    torch, full = load_stored(None, used, path)
    tok = wv.load_reference_tokenizer()
    head = full.head.weight.detach().double().numpy()
    cases = []
    with torch.no_grad():
        for text in PROMPTS:
            ids = tok.encode(text)
            h = full.hidden(torch.tensor([ids]))[0, -1].numpy()
            logits = head @ q8_0_round(h).astype(np.float64)
            exact = head @ h.astype(np.float64)
            order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))[:top]
            cases.append({"prompt": text, "tokens": ids, "argmax": int(order[0]),
                          "top": [{"token": int(i), "logit": float(logits[i])} for i in order],
                          "max_abs_effect_of_q8_rounding": float(np.max(np.abs(logits - exact)))})
            print(f"{text!r}: argmax {order[0]} {tok.decode([order[0]])!r}", file=sys.stderr)
    doc = {"model": "models/roost-demo.gguf", "source": "tools/train_demo_model.py (torch)",
           "note": "logits after the last prompt token from the zero state; the head input rounded to Q8_0 "
                   "as Roost's quantized products do",
           "tolerance_abs": 1e-3, "cases": cases}
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out_json}", file=sys.stderr)


def greedy_sample(path: str, prompt: str, n: int) -> str:
    torch, full = load_stored(None, None, path)
    tok = wv.load_reference_tokenizer()
    ids = tok.encode(prompt)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(full(torch.tensor([ids]))[0, -1].argmax()))
    return tok.decode(ids)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=os.path.join(ROOT, ".run", "demo-model"),
                    help="checkpoints and the tokenized text (default .run/demo-model)")
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "roost-demo.gguf"))
    ap.add_argument("--expected", default=os.path.join(ROOT, "Tests", "Fixtures", "demo-model-expected.json"))
    ap.add_argument("--minutes", type=float, default=25.0, help="training wall time in total (over resumes)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lr-final", type=float, default=2e-4)
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--sample", type=int, default=0, help="print a greedy sample of N tokens per prompt (torch)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)

    stream = token_stream(args.work)
    used = np.unique(stream)
    print(f"stream: {len(stream)} tokens, {len(used)} distinct", file=sys.stderr)
    if not args.export_only:
        train(args, stream, used)
    torch, RWKV7 = build_torch()
    torch.set_num_threads(args.threads)
    model = RWKV7(CONFIG, len(used))
    st = torch.load(os.path.join(args.work, "checkpoint.pt"))
    model.load_state_dict(st["model"])
    print(f"checkpoint: step {st['step']}, {st['elapsed'] / 60:.1f} min, loss (avg) {st['loss_avg']:.3f}",
          file=sys.stderr)
    write_gguf(model, used, args.out)
    expected_logits(args.out, used, args.expected)
    for text in PROMPTS[: 3 if args.sample else 0]:
        print(repr(greedy_sample(args.out, text, args.sample)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
