#!/usr/bin/env python3
"""Run the same GGUF through roostd and llama.cpp in one run and print the speed ratios.

For each model: `roostd bench MODEL --json` (prompt and generation tokens/s, its measured read
bandwidth and weight bytes per token), then llama.cpp through llama-cpp-python's low-level API
(the same number of pseudo-random prompt tokens decoded as one batch, then G tokens generated one
at a time by greedy argmax over the logits, no sampler), alternating the two engines --repeats
times and keeping the best figure of each phase. Both floor fractions are computed from roostd's
weight bytes per token and one read bandwidth for the whole run (the median of roostd's probes),
so they share one floor.

Needs its own venv (llama-cpp-python compiles llama.cpp for minutes; never part of `make test`):

    python3 -m venv .venv-bench
    CMAKE_ARGS="-DGGML_NATIVE=ON" .venv-bench/bin/pip install -r tools/requirements-bench.txt
    swift build -c release --product roostd
    .venv-bench/bin/python tools/bench_vs_llamacpp.py .run/rwkv7-0.1b-q8_0.gguf --threads 2

Ratios are roostd / llama.cpp (above 1: roostd is faster). Report ratios, not absolute times:
the machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOSTD_KEYS = ("prompt_tokens_per_s", "gen_tokens_per_s", "read_bandwidth_bytes_per_s",
               "weight_bytes_per_token", "floor_fraction", "peak_rss_bytes")


# ---- roostd ------------------------------------------------------------------------------

def run_roostd(roostd: str, model: str, threads: int, prompt: int, gen: int, timeout: float,
               chunk: int | None = None) -> dict:
    cmd = [roostd, "bench", model, "--json", "--threads", str(threads),
           "--prompt-tokens", str(prompt), "--gen-tokens", str(gen)]
    if chunk:
        cmd += ["--chunk", str(chunk)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"roostd bench exited {p.returncode}: {(p.stderr or p.stdout).strip()[-400:]}")
    # the JSON object is the last thing on stdout
    out = p.stdout.strip()
    start = out.find("{")
    if start < 0:
        raise RuntimeError(f"roostd bench printed no JSON: {out[-400:]}")
    j = json.loads(out[start:])
    missing = [k for k in ROOSTD_KEYS if k not in j]
    if missing:
        raise RuntimeError(f"roostd bench JSON lacks {missing}")
    return j


# ---- llama.cpp through llama-cpp-python's low-level API -----------------------------------

_backend_ready = False


def _quiet_logs(llama_cpp) -> None:
    # keep llama.cpp's loader chatter off the table; warnings and errors still reach stderr
    # (ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 = continue the previous line)
    shown = [False]

    @llama_cpp.llama_log_callback
    def cb(level, text, user_data):  # noqa: ARG001
        show = level in (3, 4) or (level == 5 and shown[0])
        if level != 5:
            shown[0] = show
        if show:
            sys.stderr.write(text.decode("utf-8", "replace"))
    _quiet_logs.cb = cb  # keep a reference
    llama_cpp.llama_log_set(cb, ctypes.c_void_p(0))


def prompt_ids(n: int, n_vocab: int, seed: int = 1234) -> list[int]:
    """Pseudo-random token ids (fixed seed, an LCG), avoiding id 0 (<s> in the World vocabulary)."""
    ids, x = [], seed
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        ids.append(1 + (x >> 33) % (n_vocab - 1))
    return ids


def read_token_stream(path: str, needed: int, n_vocab: int | None = None) -> list[int]:
    """Whitespace-separated token ids (the format of `roostd bench --tokens-file`); at least `needed`."""
    with open(path) as f:
        ids = [int(x) for x in f.read().split()]
    if len(ids) < needed:
        raise ValueError(f"{path}: {len(ids)} token ids; --prompt-tokens + --gen-tokens need {needed}")
    if n_vocab is not None:
        bad = [t for t in ids[:needed] if not 0 <= t < n_vocab]
        if bad:
            raise ValueError(f"{path}: token id {bad[0]} outside the vocabulary (0..{n_vocab - 1})")
    return ids[:needed]


def _proc_read_bytes() -> int | None:
    """Bytes this process (all its threads) caused to be read from the block layer: /proc/self/io
    read_bytes (page-cache misses of the mmap'd weights included, cache hits not)."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _peak_rss_bytes() -> int:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def run_llamacpp(model: str, threads: int, prompt: int, gen: int, batch: int,
                 tokens_file: str | None = None, warmup: bool = True) -> dict:
    """Prompt-processing and generation tokens/s of llama.cpp on MODEL.

    Without tokens_file: `prompt` pseudo-random ids, then `gen` tokens generated greedily.
    With tokens_file (teacher forcing, as `roostd bench --tokens-file`): its first `prompt` ids
    are the prompt, the next `gen` ids are fed one at a time as the generated tokens (the argmax
    is still computed each step, so the work per step is the same as in greedy generation).
    The result also carries the disk bytes read (/proc/self/io) during generation and in total,
    and the process's peak RSS."""
    import llama_cpp
    import numpy as np

    global _backend_ready
    if not _backend_ready:
        llama_cpp.llama_backend_init()
        _quiet_logs(llama_cpp)
        _backend_ready = True

    mparams = llama_cpp.llama_model_default_params()
    mparams.use_mmap = True
    mparams.n_gpu_layers = 0
    lmodel = llama_cpp.llama_model_load_from_file(model.encode(), mparams)
    if not lmodel:
        raise RuntimeError("llama_model_load_from_file failed")
    ctx = None
    try:
        vocab = llama_cpp.llama_model_get_vocab(lmodel)
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = prompt + gen + 16
        cparams.n_batch = batch
        cparams.n_ubatch = batch
        cparams.n_seq_max = 1
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.no_perf = False
        ctx = llama_cpp.llama_init_from_model(lmodel, cparams)
        if not ctx:
            raise RuntimeError("llama_init_from_model failed")
        mem = llama_cpp.llama_get_memory(ctx)

        def decode(ids: list[int]) -> None:
            arr = (llama_cpp.llama_token * len(ids))(*ids)
            rc = llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(arr, len(ids)))
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc}")

        def argmax_last() -> int:
            # numpy views llama.cpp's logits buffer (no copy); a ctypes loop would cost ~10 ms
            v = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
            best = int(v.argmax())
            best_v = float(v[best])
            if not np.isfinite(best_v):
                raise RuntimeError("non-finite logits")
            return best

        if tokens_file:
            stream = read_token_stream(tokens_file, prompt + gen, n_vocab)
            ids, forced = stream[:prompt], stream[prompt:]
        else:
            ids, forced = prompt_ids(prompt, n_vocab), None
        if warmup:
            # a short prompt and a few generated tokens (pages in the weights, builds graphs)
            decode(ids[: min(len(ids), batch, 32)])
            tok = argmax_last()
            for _ in range(3):
                decode([tok])
                tok = argmax_last()
            llama_cpp.llama_memory_clear(mem, True)

        r0 = _proc_read_bytes()
        t0 = time.perf_counter()
        for a in range(0, prompt, batch):
            decode(ids[a:a + batch])
        tok = argmax_last()
        t1 = time.perf_counter()
        r1 = _proc_read_bytes()
        for i in range(gen):
            if forced is None:
                decode([tok])
                tok = argmax_last()
            else:  # as roostd: step i feeds forced[i]; the argmax is read once at the end
                decode([forced[i]])
        if forced is not None:
            tok = argmax_last()
        t2 = time.perf_counter()
        r2 = _proc_read_bytes()
        out = {"prompt_tokens_per_s": prompt / (t1 - t0), "gen_tokens_per_s": gen / (t2 - t1),
               "gen_s": t2 - t1, "n_vocab": n_vocab, "final_argmax": tok,
               "peak_rss_bytes": _peak_rss_bytes()}
        if r0 is not None:
            out.update(prompt_read_bytes=r1 - r0, gen_read_bytes=r2 - r1, total_read_bytes=r2,
                       gen_disk_bytes_per_token=(r2 - r1) / max(gen, 1))
        if tokens_file:
            out["tokens_file"] = tokens_file
        return out
    finally:
        if ctx:
            llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(lmodel)
        gc.collect()


def llamacpp_child_cmd(model: str, threads: int, prompt: int, gen: int, batch: int,
                       tokens_file: str | None = None, warmup: bool = True,
                       python: str | None = None) -> list[str]:
    """The command line of one llama.cpp run in a child process (see run_llamacpp)."""
    cmd = [python or sys.executable, str(Path(__file__).resolve()), "--llamacpp-child", model,
           "--threads", str(threads), "--prompt-tokens", str(prompt), "--gen-tokens", str(gen),
           "--batch", str(batch)]
    if tokens_file:
        cmd += ["--tokens-file", tokens_file]
    if not warmup:
        cmd.append("--no-warmup")
    return cmd


def parse_llamacpp_child(returncode: int, stdout: str, stderr: str) -> dict:
    """The result of a llamacpp_child_cmd run, or a RuntimeError with the telling part of stderr."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if returncode != 0 or not lines:
        err = [ln for ln in stderr.splitlines() if ln.strip()]
        raise RuntimeError(f"llama.cpp exited {returncode}: " + " | ".join(err[-3:])[-400:])
    j = json.loads(lines[-1])
    if "error" in j:
        raise RuntimeError(j["error"] + (" | " + " | ".join(stderr.strip().splitlines()[-2:]) if stderr.strip() else ""))
    return j


def run_llamacpp_subprocess(model: str, threads: int, prompt: int, gen: int, batch: int, timeout: float) -> dict:
    """llama.cpp in a child process: a crash or abort (GGML_ASSERT) of llama.cpp on a file it does
    not support becomes an error in the table instead of ending the benchmark."""
    cmd = llamacpp_child_cmd(model, threads, prompt, gen, batch)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return parse_llamacpp_child(p.returncode, p.stdout, p.stderr)


# ---- table --------------------------------------------------------------------------------

def quant_of(model: str) -> str:
    try:
        import gguf
        r = gguf.GGUFReader(model)
        counts: dict[str, int] = {}
        for t in r.tensors:
            if len([d for d in t.shape if d > 1]) >= 2:
                counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + int(t.n_bytes)
        return max(counts, key=counts.get) if counts else "?"
    except Exception:
        return "?"


def fmt(x, nd=1) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def short_error(msg: str) -> str:
    """The most telling part of a llama.cpp failure, for the table row (the whole text follows it)."""
    for part in reversed(msg.split(" | ")):
        if "error loading model:" in part:
            return part.split("error loading model:", 1)[1].strip()[:70]
    return msg[:70]


def print_table(rows: list[dict], threads: int, prompt: int, gen: int, bandwidth: float | None,
                probes: list[float]) -> None:
    head = ["model", "quant", "roostd pp t/s", "llama pp t/s", "pp ratio", "roostd tg t/s",
            "llama tg t/s", "tg ratio", "roostd floor", "llama floor", "llama.cpp"]
    body = []
    notes = []
    for r in rows:
        ro, ll = r.get("roostd"), r.get("llamacpp")
        pp_ratio = ro["prompt_tokens_per_s"] / ll["prompt_tokens_per_s"] if ro and ll else None
        tg_ratio = ro["gen_tokens_per_s"] / ll["gen_tokens_per_s"] if ro and ll else None
        body.append([
            r["name"], r["quant"],
            fmt(ro and ro["prompt_tokens_per_s"]), fmt(ll and ll["prompt_tokens_per_s"]), fmt(pp_ratio, 2),
            fmt(ro and ro["gen_tokens_per_s"]), fmt(ll and ll["gen_tokens_per_s"]), fmt(tg_ratio, 2),
            fmt(r.get("roostd_floor_fraction"), 2), fmt(r.get("llama_floor_fraction"), 2),
            "loaded" if ll else ("error: " + short_error(r.get("llamacpp_error", "not run"))),
        ])
        for who in ("roostd_error", "llamacpp_error"):
            if r.get(who):
                notes.append(f"{r['name']}: {'roostd' if who.startswith('roostd') else 'llama.cpp'} failed: {r[who]}")
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    print(f"threads={threads} prompt_tokens={prompt} gen_tokens={gen}  (ratio = roostd / llama.cpp; "
          f"best of {max((len(r['roostd_runs']) for r in rows), default=0)} alternated runs)")
    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 or i == len(cells) - 1 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    print(line(head))
    for b in body:
        print(line(b))
    if bandwidth:
        print(f"read bandwidth {bandwidth / 1e9:.2f} GB/s (median of {len(probes)} roostd probes, "
              f"{min(probes) / 1e9:.1f}..{max(probes) / 1e9:.1f})")
    for r in rows:
        ro = r.get("roostd")
        if ro and r.get("floor_tokens_per_s"):
            print(f"{r['name']}: {ro['weight_bytes_per_token'] / 2**20:.1f} MiB of weights per token, floor "
                  f"{r['floor_tokens_per_s']:.1f} tok/s; roostd peak RSS {ro['peak_rss_bytes'] / 2**20:.0f} MiB")
    for n in notes:
        print(n)


def aggregate(runs: list[dict]) -> dict | None:
    """Best of each phase over the repeats (the other fields are the last run's)."""
    if not runs:
        return None
    out = dict(runs[-1])
    for k in ("prompt_tokens_per_s", "gen_tokens_per_s", "peak_rss_bytes"):
        if k in out:
            out[k] = max(r[k] for r in runs)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", metavar="MODEL.gguf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=512, help="llama.cpp n_batch = n_ubatch (default 512)")
    ap.add_argument("--chunk", type=int,
                    help="roostd's prompt tokens per forward call (`roostd bench --chunk`; default: --batch, "
                         "the tokens llama.cpp takes per decode call)")
    ap.add_argument("--repeats", type=int, default=1, help="alternate roostd / llama.cpp this many times per model; best of each")
    ap.add_argument("--roostd", default=str(ROOT / ".build/release/roostd"))
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per engine run")
    ap.add_argument("--json", dest="json_out", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--tokens-file", metavar="FILE", help=argparse.SUPPRESS)  # llama.cpp child only
    ap.add_argument("--no-warmup", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--llamacpp-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    batch = max(1, min(args.batch, args.prompt_tokens))
    chunk = max(1, min(args.chunk, 4096)) if args.chunk else batch
    if args.llamacpp_child:
        try:
            r = run_llamacpp(args.models[0], args.threads, args.prompt_tokens, args.gen_tokens, batch,
                             tokens_file=args.tokens_file, warmup=not args.no_warmup)
        except Exception as e:
            r = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(r), flush=True)
        return 0

    if not os.access(args.roostd, os.X_OK):
        print(f"error: {args.roostd} not found; build it: swift build -c release --product roostd", file=sys.stderr)
        return 2
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("error: llama_cpp is not importable; use the bench venv (see --help)", file=sys.stderr)
        return 2

    rows = []
    for model in args.models:
        row: dict = {"model": model, "name": Path(model).stem, "quant": quant_of(model)}
        ro_runs: list[dict] = []
        ll_runs: list[dict] = []
        for rep in range(args.repeats):
            print(f"[{row['name']}] run {rep + 1}/{args.repeats}: roostd", file=sys.stderr, flush=True)
            try:
                ro_runs.append(run_roostd(args.roostd, model, args.threads, args.prompt_tokens, args.gen_tokens,
                                          args.timeout, chunk=chunk))
            except Exception as e:
                row["roostd_error"] = str(e)
            if "llamacpp_error" in row:
                continue
            print(f"[{row['name']}] run {rep + 1}/{args.repeats}: llama.cpp", file=sys.stderr, flush=True)
            try:
                ll_runs.append(run_llamacpp_subprocess(model, args.threads, args.prompt_tokens, args.gen_tokens,
                                                       batch, args.timeout))
            except Exception as e:
                row["llamacpp_error"] = str(e)
        ro, ll = aggregate(ro_runs), aggregate(ll_runs)
        row["roostd"], row["llamacpp"] = ro, ll
        row["roostd_runs"], row["llamacpp_runs"] = ro_runs, ll_runs
        if ro:
            row["quant"] = ro.get("quant", row["quant"])
        rows.append(row)

    # One read bandwidth for the whole run: the median of every probe roostd made (a machine
    # property; single probes swing by tens of percent on a shared machine). Each model's floor is
    # its weight bytes per token over that bandwidth; both engines' fractions use the same floor.
    probes = [r["read_bandwidth_bytes_per_s"] for row in rows for r in row["roostd_runs"]]
    bandwidth = statistics.median(probes) if probes else None
    for row in rows:
        ro, ll = row["roostd"], row["llamacpp"]
        if ro and bandwidth and ro["weight_bytes_per_token"] > 0:
            floor_tps = bandwidth / ro["weight_bytes_per_token"]
            row["floor_tokens_per_s"] = floor_tps
            row["roostd_floor_fraction"] = ro["gen_tokens_per_s"] / floor_tps
            if ll:
                row["llama_floor_fraction"] = ll["gen_tokens_per_s"] / floor_tps

    print_table(rows, args.threads, args.prompt_tokens, args.gen_tokens, bandwidth, probes)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"threads": args.threads, "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens,
                       "repeats": args.repeats, "read_bandwidth_bytes_per_s": bandwidth,
                       "llama_cpp_python": _llama_version(), "results": rows}, f, indent=2)
    return 0


def _llama_version() -> str:
    try:
        import llama_cpp
        return getattr(llama_cpp, "__version__", "?")
    except ImportError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
