#!/usr/bin/env python3
"""Benchmark `roostd serve` through its HTTP API on a Unix socket, against `roostd bench` in the same run.

Measures, on one model (a random-weight GGUF at a real shape, e.g. .run/rwkv7-0.1b-q8_0.gguf):

1. HTTP cost: generation tokens/s of one streamed request (tokens after the first, over the time
   from the first to the last SSE chunk) against `roostd bench`'s generation tokens/s, both with
   the same thread count; the ratio should be >= 0.95.
2. Batching: aggregate generation tokens/s of N concurrent streamed requests (N = 1, 2, 4) over the
   wall time while all N are generating; reports the speedup over N = 1.
3. Resumed sessions: time to first token of a short message sent to a session after 1, 4, 8 and
   16 turns of ~--turn-tokens tokens each; it should not grow with the conversation's length.

Prompts are token ids (/v1/completions with a token-array prompt) so tokenization is not timed.
Needs only the standard library and a release build:

    swift build -c release --product roostd
    .venv/bin/python tools/bench_server.py .run/rwkv7-0.1b-q8_0.gguf --threads 2

Prints a table (and --json). Report ratios, not absolute times: the machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 600):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def post(sock: str, path: str, body: dict) -> dict:
    c = UnixHTTPConnection(sock)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 300:
        raise RuntimeError(f"{path}: {r.status} {data[:300]!r}")
    return json.loads(data)


def stream(sock: str, body: dict) -> dict:
    """One streamed completion: times of the first and last token chunks, token count."""
    c = UnixHTTPConnection(sock)
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", json.dumps({**body, "stream": True}), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"stream: {r.status} {r.read()[:300]!r}")
    first = last = None
    chunks = 0
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        obj = json.loads(line[6:])
        if obj.get("choices") and obj["choices"][0].get("text"):
            now = time.perf_counter()
            first = first or now
            last = now
            chunks += 1
    c.close()
    return {"start": t0, "first": first, "last": last, "chunks": chunks}


def roostd_bench(roostd: str, model: str, threads: int, gen: int) -> float:
    p = subprocess.run([roostd, "bench", model, "--json", "--threads", str(threads), "--prompt-tokens", "16",
                        "--gen-tokens", str(gen)], capture_output=True, text=True, timeout=1200)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-400:])
    out = p.stdout
    return json.loads(out[out.find("{"):])["gen_tokens_per_s"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--roostd", default=str(ROOT / ".build/release/roostd"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gen", type=int, default=128, help="tokens generated per request")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--turn-tokens", type=int, default=256)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    model = str(Path(a.model).resolve())
    name = Path(model).stem
    work = Path(tempfile.mkdtemp(prefix="roost-bench-"))
    (work / "models").mkdir()
    (work / "models" / f"{name}.gguf").symlink_to(model)
    sock = str(work / "roost.sock")
    log = open(work / "roostd.log", "wb")
    proc = subprocess.Popen([a.roostd, "serve", "--socket", sock, "--models", str(work / "models"), "--state-dir",
                             str(work / "state"), "--threads", str(a.threads), "--max-sessions", "8"],
                            stdout=log, stderr=log)
    rng = random.Random(7)
    results: dict = {"model": name, "threads": a.threads, "gen_tokens": a.gen}
    try:
        deadline = time.time() + 60
        while not os.path.exists(sock):
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("roostd serve did not start: " + (work / "roostd.log").read_text()[-2000:])
            time.sleep(0.05)
        def body(seed: int) -> dict:
            r = random.Random(seed)
            return {"model": name, "prompt": [r.randrange(1, 60000) for _ in range(16)], "max_tokens": a.gen,
                    "temperature": 0}
        stream(sock, body(0))  # load the model, warm up

        # 1. HTTP path against roostd bench, alternating.
        http_rates, bench_rates = [], []
        for i in range(a.repeats):
            s = stream(sock, body(100 + i))
            http_rates.append((s["chunks"] - 1) / (s["last"] - s["first"]))
            bench_rates.append(roostd_bench(a.roostd, model, a.threads, a.gen))
        results["http_gen_tokens_per_s"] = max(http_rates)
        results["bench_gen_tokens_per_s"] = max(bench_rates)
        results["http_over_bench"] = results["http_gen_tokens_per_s"] / results["bench_gen_tokens_per_s"]

        # 2. Concurrent streams.
        agg = {}
        for n in (1, 2, 4):
            best = 0.0
            for rep in range(a.repeats):
                out: list[dict] = [None] * n  # type: ignore
                def worker(i: int) -> None:
                    out[i] = stream(sock, body(1000 * n + 10 * rep + i))
                ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                begin = max(o["first"] for o in out)
                end = min(o["last"] for o in out)
                # tokens generated by all streams while all were generating, estimated per stream
                tokens = sum((o["chunks"] - 1) * (end - begin) / (o["last"] - o["first"]) for o in out)
                best = max(best, tokens / (end - begin) if end > begin else 0)
            agg[n] = best
        results["aggregate_tokens_per_s"] = {str(k): v for k, v in agg.items()}
        results["speedup_4"] = agg[4] / agg[1]

        # 3. Resumed session: time to first token after k turns.
        sid = post(sock, "/v1/sessions", {"model": name})["id"]
        ttft = {}
        turns = 0
        for k in (1, 4, 8, 16):
            while turns < k:
                text = " ".join(f"word{rng.randrange(1000)}" for _ in range(a.turn_tokens // 3))
                post(sock, "/v1/chat/completions", {"model": name, "session": sid, "max_tokens": 32,
                                                    "messages": [{"role": "user", "content": text}]})
                turns += 1
            samples = []
            for _ in range(a.repeats):
                # Each probe is a turn too; measure the first chunk's latency.
                c = UnixHTTPConnection(sock)
                t0 = time.perf_counter()
                c.request("POST", "/v1/chat/completions", json.dumps({
                    "model": name, "session": sid, "max_tokens": 1, "stream": True,
                    "messages": [{"role": "user", "content": "ok?"}]}), {"Content-Type": "application/json"})
                r = c.getresponse()
                for raw in r:
                    if b'"content":"' in raw and b'"content":""' not in raw:
                        samples.append(time.perf_counter() - t0)
                        break
                r.read()
                c.close()
            ttft[k] = statistics.median(samples) if samples else float("nan")
        results["resumed_ttft_s"] = {str(k): v for k, v in ttft.items()}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    if a.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"model {name}, {a.threads} threads, {a.gen} tokens per request")
        print(f"HTTP stream gen tok/s   {results['http_gen_tokens_per_s']:8.1f}")
        print(f"roostd bench gen tok/s  {results['bench_gen_tokens_per_s']:8.1f}")
        print(f"HTTP / bench            {results['http_over_bench']:8.3f}")
        for n, v in results["aggregate_tokens_per_s"].items():
            print(f"{n} concurrent: aggregate {v:8.1f} tok/s  ({v / results['aggregate_tokens_per_s']['1']:.2f}x)")
        for k, v in results["resumed_ttft_s"].items():
            print(f"resumed session after {k:>2} turns: time to first token {v * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
