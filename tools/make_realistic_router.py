#!/usr/bin/env python3
"""Give an OLMoE-shaped random-weight GGUF routers that route like trained ones.

Trained routers make a few experts per layer popular, and consecutive tokens of a text tend
to reuse experts; caching experts (issue 11's ExpertStore) depends on exactly these two
properties. Random routers on a random-weight model do not route uniformly either (measured:
docs/BENCHMARKS.md, "Test models with random and realistic routing"): the router inputs share
one large mean direction, so each random router row carries a fixed per-expert bias.

This tool rewrites the router tensors `blk.N.ffn_gate_inp.weight` (F32, [n_expert, n_embd])
of a model, built from what the model itself computes:

  1. a token stream (--tokens-out): the tokens are split into --clusters clusters by their
     embeddings (each token goes to the nearest of K random directions of token_embd's space),
     and the stream is a Markov chain over the clusters (stay with probability --stay, else
     jump to a random cluster; the token is uniform within the cluster), so nearby tokens of
     the stream share a cluster, as nearby words of a text share a topic;
  2. llama.cpp runs the model on the first --calib-tokens of that stream and the router input
     of every layer (the `ffn_norm-N` tensor: RMS-normed residual stream times the norm
     weights) is captured through the eval callback: H_l, one row per token;
  3. for layer l, with mu = the mean of H_l, Z = H_l - mu, P = the span of the --span leading
     principal components of Z (made orthogonal to mu) and m_k = the mean of Z over the tokens
     of cluster k, projected on P, expert e's router row is
         w_e = a_e * mu / |mu|^2                          (popularity: mu.h ~ |mu|^2 for every
                                                           token, so a_e acts as a bias)
             + b * m_{k(e)} / (|m_k| * s_k)               (topic: a z-scored projection on its
                                                           cluster's mean direction)
             + g_e / (sqrt(span) * r_P)                   (a random direction of P per expert,
                                                           for token-level variety)
     where a_e = -zipf * ln(rank_e + 1) (rank: a random permutation per layer; Zipf-like
     popularity), k(e) assigns the experts round-robin to the clusters (shuffled per layer),
     s_k is the std of Z's projection on m_k, r_P the RMS of Z's coordinates in P. Only the
     popularity term points along mu: the inputs of a random model share one large mean
     direction, and any other component along it would be a fixed per-expert bias. The rows
     stay in P, the part of the input space the calibration tokens measure well;
  4. zipf and b are chosen per layer by a small grid search on the captured H_l so that the
     top 10% of experts take about --target-top10 of the routings and an expert chosen at
     token t is chosen again at t+1 with probability about --target-reuse; steps 2-4 run
     --iterations rounds, each on the router inputs of the model the previous round wrote
     (a rewritten layer changes what all later layers see);
  5. the routing of the rewritten model is measured with llama.cpp again (the `ffn_moe_logits`
     of every layer, top-k taken in numpy) on a held-out part of the stream and on
     pseudo-random tokens; its statistics, per layer, next to those of the routers before,
     are printed (and written with --stats-json).

--mode uniform writes routers meant to route close to uniformly and independently instead
(random rows orthogonal to mu and to the slowly varying principal components of Z).

The model must be loadable by llama.cpp; a GPT-2 tokenizer without `tokenizer.ggml.merges`
(llama.cpp refuses it) gets a one-entry merge list in the copy (--out).

    .venv-bench/bin/python tools/make_realistic_router.py .run/olmoe-1b-7b-q8_0.gguf \\
        --out .run/olmoe-1b-7b-q8_0-realistic.gguf --tokens-out .run/olmoe-stream.tokens
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import gguf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vs_llamacpp as bvl  # noqa: E402

ROUTER = "blk.{}.ffn_gate_inp.weight"


# ---- GGUF -----------------------------------------------------------------------------------

def copy_gguf(src: str, dst: str) -> None:
    """A copy of src (tensor data byte for byte); adds a one-entry merge list when a GPT-2
    tokenizer has none (llama.cpp refuses to load such a vocabulary)."""
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    out_dir = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix=".router-copy-", suffix=".gguf", dir=out_dir)
    os.close(fd)
    try:
        w = gguf.GGUFWriter(tmp, arch=arch, endianess=r.endianess)
        al = r.fields.get("general.alignment")
        if al is not None:
            w.data_alignment = int(al.contents())
        for field in r.fields.values():
            if field.name == "general.architecture" or field.name.startswith("GGUF."):
                continue
            vt = field.types[0]
            sub = field.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
            w.add_key_value(field.name, field.contents(), vt, sub_type=sub)
        model = r.fields.get("tokenizer.ggml.model")
        if model is not None and model.contents() == "gpt2" and "tokenizer.ggml.merges" not in r.fields:
            print("note: the tokenizer has no merges; the copy gets one (llama.cpp needs the key)", file=sys.stderr)
            w.add_key_value("tokenizer.ggml.merges", ["a b"], gguf.GGUFValueType.ARRAY,
                            sub_type=gguf.GGUFValueType.STRING)
        for t in r.tensors:
            w.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        total, done, t0 = sum(int(t.n_bytes) for t in r.tensors), 0, time.monotonic()
        for t in r.tensors:
            w.write_tensor_data(t.data, tensor_endianess=r.endianess)
            done += int(t.n_bytes)
            if t.name.endswith("ffn_down_exps.weight"):
                print(f"  copied {done / 2**30:.1f}/{total / 2**30:.1f} GiB ({time.monotonic() - t0:.0f} s)",
                      file=sys.stderr, flush=True)
        w.close()
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def model_shape(path: str) -> dict:
    r = gguf.GGUFReader(path)

    def get(suffix: str):
        for k, f in r.fields.items():
            if k.endswith(suffix):
                return f.contents()
        return None
    shape = {"arch": get("general.architecture"), "n_layer": int(get(".block_count")),
             "n_expert": int(get(".expert_count")), "n_expert_used": int(get(".expert_used_count")),
             "n_embd": int(get(".embedding_length")), "n_vocab": len(r.fields["tokenizer.ggml.tokens"].data)}
    return shape


def token_embeddings(path: str) -> np.ndarray:
    r = gguf.GGUFReader(path)
    t = next(t for t in r.tensors if t.name == "token_embd.weight")
    from gguf import quants
    return quants.dequantize(t.data, t.tensor_type).reshape(int(t.shape[1]), int(t.shape[0])).astype(np.float32)


def write_routers(path: str, routers: dict[int, np.ndarray]) -> None:
    """Overwrite the F32 router tensors in place (same shape and type, so same bytes)."""
    r = gguf.GGUFReader(path)
    where = {}
    for t in r.tensors:
        if t.name.endswith("ffn_gate_inp.weight"):
            assert t.tensor_type == gguf.GGMLQuantizationType.F32, (t.name, t.tensor_type)
            where[t.name] = (int(t.data_offset), int(t.n_bytes))
    del r
    with open(path, "r+b") as f:
        for il, w in routers.items():
            off, n = where[ROUTER.format(il)]
            data = np.ascontiguousarray(w, dtype="<f4").tobytes()
            assert len(data) == n, (il, len(data), n)
            f.seek(off)
            f.write(data)
        f.flush()
        os.fsync(f.fileno())


# ---- the token stream -------------------------------------------------------------------------

def make_stream(emb: np.ndarray, n_tokens: int, n_clusters: int, stay: float, seed: int,
                avoid: set[int]) -> tuple[np.ndarray, np.ndarray]:
    """(token ids, cluster of every vocabulary id): a Markov chain over embedding clusters."""
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((n_clusters, emb.shape[1])).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    cluster = (emb @ dirs.T).argmax(axis=1)
    members = [np.array([t for t in np.nonzero(cluster == k)[0] if t not in avoid]) for k in range(n_clusters)]
    ids = np.empty(n_tokens, dtype=np.int64)
    k = int(rng.integers(n_clusters))
    for i in range(n_tokens):
        if i and rng.random() >= stay:
            k = int(rng.integers(n_clusters))
        ids[i] = members[k][rng.integers(len(members[k]))]
    return ids, cluster


# ---- llama.cpp: capture router inputs and router logits ---------------------------------------

def capture(model: str, tokens: np.ndarray, names: tuple[str, ...], threads: int, n_layer: int,
            n_seqs: int = 1) -> dict[str, np.ndarray]:
    """Run llama.cpp on `tokens` (one batch: n_seqs independent sequences of equal length, one
    after the other) and return {f"{name}-{il}": array [n_tokens, width]} for every requested
    tensor name, read in the eval callback."""
    import llama_cpp
    libdir = Path(llama_cpp.__file__).parent / "lib"
    ggml = ctypes.CDLL(str(libdir / "libggml-base.so"))
    ggml.ggml_get_name.restype = ctypes.c_char_p
    ggml.ggml_get_name.argtypes = [ctypes.c_void_p]
    ggml.ggml_nelements.restype = ctypes.c_int64
    ggml.ggml_nelements.argtypes = [ctypes.c_void_p]
    ggml.ggml_get_data.restype = ctypes.c_void_p
    ggml.ggml_get_data.argtypes = [ctypes.c_void_p]
    ggml.ggml_is_contiguous.restype = ctypes.c_bool
    ggml.ggml_is_contiguous.argtypes = [ctypes.c_void_p]
    wanted = {f"{n}-{il}" for n in names for il in range(n_layer)}
    got: dict[str, np.ndarray] = {}
    n_tok = len(tokens)

    @llama_cpp.ggml_backend_sched_eval_callback
    def cb(t, ask, user_data):  # noqa: ARG001
        name = ggml.ggml_get_name(t).decode()
        if ask:
            return name in wanted
        if name in wanted:
            n = ggml.ggml_nelements(t)
            if not ggml.ggml_is_contiguous(t):
                raise RuntimeError(f"{name} is not contiguous")
            buf = (ctypes.c_float * n).from_address(ggml.ggml_get_data(t))
            got[name] = np.frombuffer(buf, dtype=np.float32).reshape(n_tok, n // n_tok).copy()
        return True

    llama_cpp.llama_backend_init()
    bvl._quiet_logs(llama_cpp)
    mp = llama_cpp.llama_model_default_params()
    mp.use_mmap = True
    m = llama_cpp.llama_model_load_from_file(model.encode(), mp)
    if not m:
        raise RuntimeError(f"llama.cpp cannot load {model}")
    cp = llama_cpp.llama_context_default_params()
    seq_len = n_tok // n_seqs
    assert seq_len * n_seqs == n_tok
    cp.n_ctx = (seq_len + 16) * n_seqs
    cp.n_seq_max = n_seqs
    cp.n_batch = cp.n_ubatch = n_tok
    cp.n_threads = cp.n_threads_batch = threads
    cp.cb_eval = cb
    cp.cb_eval_user_data = None
    ctx = llama_cpp.llama_init_from_model(m, cp)
    try:
        # every token an output: the last layer then keeps all rows (llama.cpp drops the rows
        # that produce no logits before the last layer's FFN)
        batch = llama_cpp.llama_batch_init(n_tok, 0, 1)
        try:
            for i, tok in enumerate(tokens):
                batch.token[i] = int(tok)
                batch.pos[i] = i % seq_len
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = i // seq_len
                batch.logits[i] = 1
            batch.n_tokens = n_tok
            rc = llama_cpp.llama_decode(ctx, batch)
        finally:
            llama_cpp.llama_batch_free(batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
    finally:
        llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(m)
    missing = wanted - got.keys()
    if missing:
        raise RuntimeError(f"the eval callback never saw {sorted(missing)[:3]}")
    return got


# ---- routing statistics ---------------------------------------------------------------------

def route(logits: np.ndarray, k: int) -> np.ndarray:
    """Top-k experts per token (as llama.cpp: softmax is monotonic, so top-k of the logits)."""
    return np.argpartition(-logits, k - 1, axis=1)[:, :k]


def stats(sel: np.ndarray, n_expert: int, seq_len: int | None = None) -> dict:
    """Popularity (share of routings taken by the top 10% / 25% of experts, entropy of the
    expert distribution in bits, max log2(n_expert)) and reuse (probability that an expert
    chosen at token t is chosen again at t+1; uniform routing gives k / n_expert)."""
    T, k = sel.shape
    counts = np.bincount(sel.ravel(), minlength=n_expert).astype(np.float64)
    share = np.sort(counts)[::-1] / counts.sum()
    p = share[share > 0]
    onehot = np.zeros((T, n_expert), dtype=bool)
    onehot[np.arange(T)[:, None], sel] = True
    pair = np.ones(T - 1, dtype=bool)
    if seq_len:
        pair[seq_len - 1::seq_len] = False  # no pairs across sequence boundaries
    reuse = (onehot[1:] & onehot[:-1])[pair].sum() / (k * pair.sum())
    return {"top10": float(share[:max(1, round(0.10 * n_expert))].sum()),
            "top25": float(share[:max(1, round(0.25 * n_expert))].sum()),
            "entropy_bits": float(-(p * np.log2(p)).sum()), "reuse": float(reuse)}


# ---- router design ----------------------------------------------------------------------------

def _orth(X: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Rows of X with their components in the span of Q's orthonormal rows removed."""
    return X - (X @ Q.T) @ Q


def design_layer(H: np.ndarray, cluster_of_tok: np.ndarray, n_expert: int, k: int, n_clusters: int,
                 mode: str, target_top10: float, target_reuse: float, slow_share: float,
                 rng: np.random.Generator, span: int = 64, seq_len: int | None = None) -> tuple[np.ndarray, dict]:
    """Router rows for one layer from its captured router inputs H (one row per token).

    Every hidden state carries the same large mean direction mu (most of |h|^2 after the first
    layer of a random model), so any router row with a component along mu gives its expert a
    fixed bias: that is why plain random routers route far from uniformly. Here only the
    popularity term may point along mu; the random and topic terms are made orthogonal to it.
    mode "uniform": only the random term, also orthogonal to the slowly varying principal
    components of Z (those covering --slow-share of its variance: the context that neighbouring
    tokens share), so each token's choice is close to independent of its neighbours'.
    mode "realistic": popularity + topic + random, zipf and topic strength by grid search."""
    T, C = H.shape
    mu = H.mean(axis=0)
    mu_hat = (mu / np.linalg.norm(mu))[None, :]
    Z = H - mu
    r = float(np.sqrt((Z ** 2).mean()))
    rank = rng.permutation(n_expert)
    zipf_shape = -np.log(rank + 1.0)
    zipf_shape -= zipf_shape.mean()
    G = rng.standard_normal((n_expert, C)).astype(np.float32)
    info = {"mu_share": float(mu @ mu / (H ** 2).sum(axis=1).mean())}
    if mode == "uniform":
        _, sv, Vt = np.linalg.svd(Z, full_matrices=False)
        cum = np.cumsum(sv ** 2) / (sv ** 2).sum()
        q = min(int(np.searchsorted(cum, slow_share) + 1), T // 4)
        Q = np.concatenate([mu_hat, Vt[:q]])
        Q, _ = np.linalg.qr(Q.T)
        Q = Q.T
        Gp = _orth(G, Q)
        fast = _orth(Z, Q)
        rf = float(np.sqrt((fast ** 2).mean()))
        w = (Gp / (np.sqrt(C) * rf)).astype(np.float32)
        info.update(slow_components=q, predicted=stats(route(H @ w.T, k), n_expert))
        return w, info
    # Router rows stay inside the well-measured part of the input space: the span of mu and of
    # the leading principal components of Z. A random row's component outside it is invisible
    # on the calibration tokens but meets other tokens' inputs (another context, another mean)
    # as a fixed per-expert bias, which skews their routing far beyond the design.
    _, sv, Vt = np.linalg.svd(Z, full_matrices=False)
    # Each sequence has a mean of its own (its context), far from mu on this scale: a fixed
    # bias for all its tokens unless the rows are orthogonal to those sequence means too.
    Q = mu_hat
    if seq_len and T // seq_len > 1:
        D = H.reshape(T // seq_len, seq_len, C).mean(axis=1) - mu
        Q, _ = np.linalg.qr(np.concatenate([mu_hat, D]).T)
        Q = Q.T
    P = _orth(Vt[:span], Q)
    P, _ = np.linalg.qr(P.T)
    P = P.T
    present = [c for c in range(n_clusters) if (cluster_of_tok == c).sum() >= 2]
    M = np.stack([Z[cluster_of_tok == c].mean(axis=0) for c in present])
    M = (M @ P.T) @ P
    Mhat = M / np.linalg.norm(M, axis=1, keepdims=True)
    s = (Z @ Mhat.T).std(axis=0) + 1e-12
    owner = rng.permutation(np.arange(n_expert) % len(present))
    pop_dir = mu / float(mu @ mu)
    topic = Mhat[owner] / s[owner, None]
    Gp = (G @ P.T) @ P
    zp = Z @ P.T
    noise = Gp / (np.sqrt(span) * float(np.sqrt((zp ** 2).mean())))

    def build(zipf: float, b: float) -> np.ndarray:
        return (zipf * zipf_shape[:, None] * pop_dir[None, :] + b * topic + noise).astype(np.float32)

    best = None
    for zipf in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0):
        for b in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0):
            st = stats(route(H @ build(zipf, b).T, k), n_expert, seq_len)
            err = abs(st["top10"] - target_top10) / target_top10 + abs(st["reuse"] - target_reuse) / target_reuse
            if best is None or err < best[0]:
                best = (err, zipf, b, st)
    _, zipf, b, st = best
    info.update(zipf=zipf, topic=b, predicted=st,
                between_cluster_share=float((M ** 2).sum(axis=1).mean() / (Z ** 2).sum(axis=1).mean()))
    return build(zipf, b), info


def print_stats(title: str, per_layer: list[dict], base: list[dict] | None) -> None:
    print(title)
    print("layer  top10%  top25%  entropy  reuse t->t+1" + ("   | routers before: top10% top25% entropy reuse" if base else ""))
    for il, st in enumerate(per_layer):
        line = f"{il:5d}  {st['top10']:6.1%}  {st['top25']:6.1%}  {st['entropy_bits']:7.2f}  {st['reuse']:12.1%}"
        if base:
            b = base[il]
            line += f"   | {b['top10']:21.1%} {b['top25']:6.1%} {b['entropy_bits']:7.2f} {b['reuse']:5.1%}"
        print(line)

    def mean(key, rows):
        return sum(s[key] for s in rows) / len(rows)
    line = (f" mean  {mean('top10', per_layer):6.1%}  {mean('top25', per_layer):6.1%}  "
            f"{mean('entropy_bits', per_layer):7.2f}  {mean('reuse', per_layer):12.1%}")
    if base:
        line += (f"   | {mean('top10', base):21.1%} {mean('top25', base):6.1%} {mean('entropy_bits', base):7.2f} "
                 f"{mean('reuse', base):5.1%}")
    print(line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", metavar="MODEL.gguf")
    ap.add_argument("--out", help="write a copy and rewrite that (default: rewrite MODEL in place)")
    ap.add_argument("--copy-only", action="store_true",
                    help="only write the --out copy (routers untouched; adds missing merges)")
    ap.add_argument("--tokens-out", help="write the token stream here (whitespace-separated ids)")
    ap.add_argument("--stream-tokens", type=int, default=4096, help="length of the written stream")
    ap.add_argument("--calib-tokens", type=int, default=512, help="stream tokens llama.cpp runs to measure")
    ap.add_argument("--clusters", type=int, default=16)
    ap.add_argument("--stay", type=float, default=0.9, help="Markov chain: probability to stay in the cluster")
    ap.add_argument("--mode", choices=["realistic", "uniform"], default="realistic",
                    help="realistic: skewed, correlated routing; uniform: routers that route close to "
                         "uniformly and independently from token to token (the pessimistic case)")
    ap.add_argument("--slow-share", type=float, default=0.9,
                    help="uniform: remove the principal components of the centred router inputs that "
                         "cover this share of their variance from the router rows")
    ap.add_argument("--target-top10", type=float, default=0.30,
                    help="share of routings of the top 10%% of experts (uniform: 0.10)")
    ap.add_argument("--target-reuse", type=float, default=0.45,
                    help="P(expert chosen at t is chosen at t+1) (uniform: top-k / n_expert)")
    ap.add_argument("--span", type=int, default=64,
                    help="realistic: router rows lie in the span of the mean input and this many leading "
                         "principal components of the centred inputs")
    ap.add_argument("--calib-seqs", type=int, default=8,
                    help="the calibration tokens are this many independent sequences from across the stream")
    ap.add_argument("--iterations", type=int, default=3,
                    help="design rounds, each on the router inputs of the model the previous round wrote")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stats-json", help="write the measured statistics here")
    args = ap.parse_args()

    path = args.model
    if args.out:
        print(f"copying {args.model} -> {args.out}", file=sys.stderr, flush=True)
        copy_gguf(args.model, args.out)
        path = args.out
        if args.copy_only:
            return 0
    shape = model_shape(path)
    L, E, k = shape["n_layer"], shape["n_expert"], shape["n_expert_used"]
    print(f"{path}: {shape['arch']}, {L} layers, {E} experts, top-{k}, n_embd {shape['n_embd']}", file=sys.stderr)

    emb = token_embeddings(path)
    eos = shape["n_vocab"] - 1
    n_stream = max(args.stream_tokens, 2 * args.calib_tokens)
    ids, cluster = make_stream(emb, n_stream, args.clusters, args.stay, args.seed, avoid={0, eos})
    del emb
    if args.tokens_out:
        Path(args.tokens_out).write_text(" ".join(map(str, ids.tolist())) + "\n")
        print(f"wrote {n_stream} tokens to {args.tokens_out}", file=sys.stderr)
    # --calib-seqs independent sequences spread over the stream, for the design; as many others,
    # shifted by half a spacing, held out for the check
    nseq = args.calib_seqs
    seq_len = args.calib_tokens // nseq
    spacing = len(ids) // nseq
    calib = np.concatenate([ids[j * spacing:j * spacing + seq_len] for j in range(nseq)])
    held = np.concatenate([ids[j * spacing + spacing // 2:j * spacing + spacing // 2 + seq_len] for j in range(nseq)])
    cl = cluster[calib]

    # Rewriting layer l's router changes what every later layer sees (other experts, another
    # mean direction), so the design is repeated on the rewritten model: the same random draws
    # each round (same seed), new router inputs, until the routing stops changing much.
    before = None
    for it in range(args.iterations):
        print(f"round {it + 1}/{args.iterations}: measuring the router inputs and the routing with llama.cpp",
              file=sys.stderr, flush=True)
        t0 = time.monotonic()
        cap = capture(path, calib, ("ffn_norm", "ffn_moe_logits"), args.threads, L, nseq)
        now = [stats(route(cap[f"ffn_moe_logits-{il}"], k), E, seq_len) for il in range(L)]
        print(f"  {time.monotonic() - t0:.0f} s; routing now (calibration tokens): mean top10% "
              f"{np.mean([x['top10'] for x in now]):.1%}, reuse {np.mean([x['reuse'] for x in now]):.1%}",
              file=sys.stderr, flush=True)
        if before is None:
            before = now
        rng = np.random.default_rng(args.seed + 1)
        routers, infos = {}, []
        for il in range(L):
            w, info = design_layer(cap[f"ffn_norm-{il}"], cl, E, k, args.clusters, args.mode, args.target_top10,
                                   args.target_reuse, args.slow_share, rng, span=args.span, seq_len=seq_len)
            routers[il] = w
            infos.append(info)
            pr = info["predicted"]
            detail = (f"zipf {info['zipf']}, topic {info['topic']}" if args.mode == "realistic"
                      else f"{info['slow_components']} slow components removed")
            print(f"  layer {il}: {detail}, mean direction {info['mu_share']:.0%} of |h|^2; predicted top10% "
                  f"{pr['top10']:.1%}, reuse {pr['reuse']:.1%}", file=sys.stderr, flush=True)
        del cap
        write_routers(path, routers)
    print("measuring the routing of the rewritten routers with llama.cpp (held-out part of the stream)",
          file=sys.stderr, flush=True)
    cap = capture(path, held, ("ffn_moe_logits",), args.threads, L, nseq)
    after = [stats(route(cap[f"ffn_moe_logits-{il}"], k), E, seq_len) for il in range(L)]

    # the same measurement on a pseudo-random stream (what the benchmarks use without --tokens-file)
    rnd = np.random.default_rng(args.seed + 2).integers(1, eos, seq_len * nseq)
    cap = capture(path, rnd, ("ffn_moe_logits",), args.threads, L, nseq)
    after_rnd = [stats(route(cap[f"ffn_moe_logits-{il}"], k), E, seq_len) for il in range(L)]

    print(f"routing measured with llama.cpp on {args.calib_tokens} tokens (uniform routing: top10% "
          f"{max(1, round(0.1 * E)) / E:.1%}, reuse {k / E:.1%}, entropy {np.log2(E):.2f} bits)")
    print_stats(f"{args.mode} routers, clustered stream ({nseq} held-out sequences of {seq_len}), next to the "
                f"routers before (the {nseq} calibration sequences):", after, before)
    print_stats(f"{args.mode} routers, pseudo-random tokens:", after_rnd, None)
    if args.stats_json:
        with open(args.stats_json, "w") as fh:
            json.dump({"model": path, "mode": args.mode, "calib_tokens": args.calib_tokens, "clusters": args.clusters, "stay": args.stay,
                       "targets": {"top10": args.target_top10, "reuse": args.target_reuse},
                       "random_routers": before, "rewritten": after, "rewritten_random_tokens": after_rnd,
                       "design": infos}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
