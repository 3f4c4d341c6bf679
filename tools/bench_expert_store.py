#!/usr/bin/env python3
"""MoE decode speed under a memory limit: roostd (its ExpertStore) against llama.cpp (plain mmap).

For each GGUF model, each memory limit (a fraction of the model file's size, or none) and each
engine, in one run:

  1. the model file is dropped from the page cache (fsync, posix_fadvise DONTNEED) and the part
     still cached is measured with mincore() (reported as `cached` before the run);
  2. a cgroup v1 child group is made under /sys/fs/cgroup/memory/ with memory.limit_in_bytes
     (and memory.memsw.limit_in_bytes when the kernel has it) set to the limit, plus a blkio
     group when /sys/fs/cgroup/blkio is writable; the engine process is put into it by a
     wrapper (`sh -c 'echo $$ > .../cgroup.procs; exec "$@"'`) before it execs, so everything
     it maps or caches is charged there from the start;
  3. the engine runs: `roostd bench MODEL --json --threads T --prompt-tokens P --gen-tokens G
     --tokens-file F [--memory-budget B]` (B = --budget-fraction of the limit, 85% by default;
     each option only when the binary's --help lists it), or llama.cpp through
     llama-cpp-python's low-level API (tools/bench_vs_llamacpp.py's child runner: the prompt
     as one batch, then the G tokens of the same stream fed one at a time; default mmap, no
     mlock);
  4. measured for each run: generation tokens/s; disk bytes read by the process (wait4's
     ru_inblock, i.e. /proc/PID/io read_bytes of the whole process), and per generated token:
     llama.cpp's exactly (its /proc/self/io around the decode loop), roostd's from its own
     `experts.disk_bytes_per_token` and, independently, from /proc/PID/io sampled every 50 ms
     over the last gen_tokens / gen_tokens_per_s seconds of the run (`io est.`); the peak RSS
     (wait4's ru_maxrss; roostd's own peak_rss_bytes when it reports one); the cgroup's
     memory.max_usage_in_bytes (reset before the run), pgmajfault from memory.stat and the bytes
     the blkio group saw read. The groups are removed afterwards, also on errors and Ctrl-C.

The same token stream goes to both engines: --tokens-file, or a pseudo-random one written
next to the --json output (or in a temporary folder). --stream greedy instead lets each engine
generate its own greedy output from its own pseudo-random prompt.

Output: a table (limit, model, tokens/s of both engines, their ratio, the store's hit rate and
prefetch accuracy, disk bytes per token of both, RSS, cgroup peak) on stdout, the same as JSON
with --json OUT, and a plot of generation tokens/s against the limit for both engines with
--plot PNG. See docs/BENCHMARKS.md, "Expert store under a memory limit".

Run it as root (cgroup and page-cache control) with the bench venv's interpreter:

    .venv-bench/bin/python tools/bench_expert_store.py .run/olmoe-1b-7b-q8_0.gguf \\
        --limits none,0.5,0.45,0.40,0.35,0.25 --json .run/expert-store.json --plot docs/expert-store.png
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import bench_vs_llamacpp as bvl  # noqa: E402

CGROUP_MEM = Path("/sys/fs/cgroup/memory")
CGROUP_BLKIO = Path("/sys/fs/cgroup/blkio")
DEFAULT_LIMITS = "none,0.5,0.45,0.40,0.35,0.25"


# ---- the model file -----------------------------------------------------------------------

def model_facts(path: str) -> dict:
    """File size, shape and the bytes one token's routed experts need (all layers, top-k)."""
    import gguf
    r = gguf.GGUFReader(path)

    def field(suffix: str):
        for k, f in r.fields.items():
            if k.endswith(suffix) and f.types and f.types[0] != gguf.GGUFValueType.ARRAY:
                return f.contents()
        return None

    facts = {"file_bytes": os.path.getsize(path), "arch": field("general.architecture"),
             "n_expert": field(".expert_count"), "n_expert_used": field(".expert_used_count"),
             "n_layer": field(".block_count")}
    expert_bytes = dense_bytes = 0
    for t in r.tensors:
        if "_exps." in t.name:
            expert_bytes += int(t.n_bytes)
        else:
            dense_bytes += int(t.n_bytes)
    facts["expert_bytes"] = expert_bytes
    facts["dense_bytes"] = dense_bytes
    if facts["n_expert"] and facts["n_expert_used"] and expert_bytes:
        facts["routed_bytes_per_token"] = expert_bytes * facts["n_expert_used"] // facts["n_expert"]
    tok = [f for k, f in r.fields.items() if k == "tokenizer.ggml.tokens"]
    facts["n_vocab"] = len(tok[0].data) if tok else None
    return facts


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def cached_fraction(path: str) -> float | None:
    """Share of the file's pages in the page cache (mincore on a fresh read-only mapping, which
    faults nothing in); `fincore` from util-linux when the call is not available."""
    size = os.path.getsize(path)
    if size == 0:
        return 0.0
    page = os.sysconf("SC_PAGE_SIZE")
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = _libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        try:
            n = (size + page - 1) // page
            vec = (ctypes.c_ubyte * n)()
            if _libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
            import numpy as np
            return float((np.frombuffer(vec, dtype=np.uint8) & 1).sum()) / n
        finally:
            _libc.munmap(addr, size)
    except OSError:
        try:
            out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path],
                                 capture_output=True, text=True, check=True).stdout.split()
            return int(out[0]) / size
        except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
            return None
    finally:
        os.close(fd)


def drop_from_cache(path: str) -> float | None:
    """fsync + POSIX_FADV_DONTNEED over the whole file; returns the share still cached after it
    (pages mapped by a running process stay)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return cached_fraction(path)


# ---- cgroup v1 --------------------------------------------------------------------------

class Cgroup:
    """A memory (and, when possible, blkio) child group for one engine run; rmdir on close()."""

    live: list["Cgroup"] = []

    def __init__(self, name: str, limit: int | None):
        self.mem = CGROUP_MEM / name
        self.blkio: Path | None = None
        self.mem.mkdir()
        Cgroup.live.append(self)
        try:
            if limit is not None:
                (self.mem / "memory.limit_in_bytes").write_text(str(limit))
                sw = self.mem / "memory.memsw.limit_in_bytes"
                if sw.exists():
                    sw.write_text(str(limit))  # no swap either (memsw >= limit; both fresh)
            for f in ("memory.max_usage_in_bytes", "memory.memsw.max_usage_in_bytes"):
                if (self.mem / f).exists():
                    (self.mem / f).write_text("0")
            self.limit = int((self.mem / "memory.limit_in_bytes").read_text())
            try:
                b = CGROUP_BLKIO / name
                b.mkdir()
                self.blkio = b
            except OSError:
                self.blkio = None
        except BaseException:
            self.close()
            raise

    def wrap(self, cmd: list[str]) -> list[str]:
        blk = str(self.blkio / "cgroup.procs") if self.blkio else "/dev/null"
        return ["sh", "-c", 'echo $$ > "$1" && echo $$ > "$2" && shift 2 && exec "$@"', "sh",
                str(self.mem / "cgroup.procs"), blk, *cmd]

    def stats(self) -> dict:
        out: dict = {}
        try:
            out["peak_bytes"] = int((self.mem / "memory.max_usage_in_bytes").read_text())
            stat = dict(line.split() for line in (self.mem / "memory.stat").read_text().splitlines())
            for k in ("pgmajfault", "pgpgin", "total_pgmajfault", "cache", "mapped_file", "rss"):
                if k in stat:
                    out[f"stat_{k}"] = int(stat[k])
            if (self.mem / "memory.failcnt").exists():
                out["failcnt"] = int((self.mem / "memory.failcnt").read_text())
        except OSError:
            pass
        if self.blkio:
            try:
                text = (self.blkio / "blkio.throttle.io_service_bytes").read_text()
                out["blkio_read_bytes"] = sum(int(p[2]) for p in (ln.split() for ln in text.splitlines())
                                              if len(p) == 3 and p[1] == "Read")
            except (OSError, ValueError):
                pass
        return out

    def close(self) -> None:
        for d in (self.blkio, self.mem):
            if d is None or not d.exists():
                continue
            for attempt in range(50):
                try:
                    procs = [int(x) for x in (d / "cgroup.procs").read_text().split()]
                except OSError:
                    procs = []
                for pid in procs:  # only the engine run this group was made for can be in it
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                print(f"warning: could not remove {d}", file=sys.stderr)
        if self in Cgroup.live:
            Cgroup.live.remove(self)


def cgroup_usable() -> str | None:
    """None when a child memory group can be made here, else why not."""
    if not CGROUP_MEM.is_dir() or not (CGROUP_MEM / "memory.limit_in_bytes").exists():
        return f"no cgroup v1 memory controller at {CGROUP_MEM}"
    probe = CGROUP_MEM / f"roost-xbench-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as e:
        return f"cannot create a group under {CGROUP_MEM}: {e.strerror}"
    return None


# ---- running one engine -------------------------------------------------------------------

def _read_bytes_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_process(cmd: list[str], timeout: float) -> dict:
    """Run cmd, sampling /proc/PID/io read_bytes every 50 ms; reap it with wait4 for its
    rusage (ru_inblock: bytes read from disk by the whole process, ru_maxrss: peak RSS)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        series: list[tuple[float, int]] = []
        status = ru = None
        try:
            while True:
                pid, st, r = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    status, ru = st, r
                    break
                rb = _read_bytes_of(p.pid)
                if rb is not None:
                    series.append((time.monotonic() - t0, rb))
                if time.monotonic() - t0 > timeout:
                    p.kill()
                    _, status, ru = os.wait4(p.pid, 0)
                    raise TimeoutError(f"timed out after {timeout:.0f} s")
                time.sleep(0.05)
        except BaseException:
            if status is None:
                p.kill()
                _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            raise
        finally:
            p.returncode = os.waitstatus_to_exitcode(status) if status is not None else -9
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return {"returncode": p.returncode, "stdout": out.read(), "stderr": err.read(), "wall_s": wall,
                "read_bytes": ru.ru_inblock * 512, "maxrss_bytes": ru.ru_maxrss * 1024, "io_series": series}


def window_read_bytes(series: list[tuple[float, int]], seconds: float) -> int | None:
    """Bytes read over the last `seconds` of the sampled series (the generation phase, which ends
    the run: both engines only print their result and exit after it)."""
    if len(series) < 2 or seconds <= 0:
        return None
    t_end, r_end = series[-1]
    t_start = t_end - seconds
    if t_start <= series[0][0]:
        return r_end - series[0][1]
    for (ta, ra), (tb, rb) in zip(series, series[1:]):
        if ta <= t_start <= tb:
            r_start = ra + (rb - ra) * ((t_start - ta) / (tb - ta) if tb > ta else 0.0)
            return int(r_end - r_start)
    return None


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over `seconds` (from /proc/stat), measured before a run: other
    processes on the machine. llama.cpp's threads meet at a barrier after every graph node, so
    with --threads equal to the CPU count, one CPU taken by someone else slows single-token
    decode by 10-100x; the table flags runs that started on a busy machine."""
    def snap():
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v), idle
    t0, i0 = snap()
    time.sleep(seconds)
    t1, i1 = snap()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes. A machine short of free memory reclaims pages of every group
    (kswapd), the limited one's too: its misses then grow beyond what its own limit causes."""
    out = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return out


def roostd_options(roostd: str) -> set[str]:
    p = subprocess.run([roostd, "bench", "--help"], capture_output=True, text=True)
    text = p.stdout + p.stderr
    return {o for o in ("--tokens-file", "--memory-budget") if o in text}


def roostd_cmd(args, model: str, tokens_file: str | None, budget: int | None, opts: set[str]) -> list[str]:
    cmd = [args.roostd, "bench", model, "--json", "--threads", str(args.threads),
           "--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens)]
    if tokens_file and "--tokens-file" in opts:
        cmd += ["--tokens-file", tokens_file]
    if budget is not None and "--memory-budget" in opts:
        cmd += ["--memory-budget", str(budget)]
    return cmd


def parse_roostd(res: dict) -> dict:
    out = res["stdout"].strip()
    if res["returncode"] != 0:
        msg = (res["stderr"] or out).strip().splitlines()
        raise RuntimeError(f"roostd bench exited {res['returncode']}: " + " | ".join(msg[-2:])[-300:])
    start = out.find("{")
    if start < 0:
        raise RuntimeError(f"roostd bench printed no JSON: {out[-300:]}")
    return json.loads(out[start:])


def one_run(engine: str, args, model: str, facts: dict, limit: int | None, tokens_file: str | None,
            opts: set[str], use_cgroup: bool) -> dict:
    budget = int(limit * args.budget_fraction) if limit is not None else None
    rec: dict = {"engine": engine, "limit_bytes": limit, "budget_bytes": budget if engine == "roostd" else None}
    if engine == "roostd":
        cmd = roostd_cmd(args, model, tokens_file, budget, opts)
        rec["budget_passed"] = budget is not None and "--memory-budget" in opts
        rec["stream"] = ("fixed" if tokens_file and "--tokens-file" in opts else "own greedy")
    else:
        cmd = bvl.llamacpp_child_cmd(model, args.threads, args.prompt_tokens, args.gen_tokens,
                                     max(1, min(args.batch, args.prompt_tokens)), tokens_file,
                                     warmup=args.warmup)
        rec["stream"] = "fixed" if tokens_file else "own greedy"
    if args.drop_cache:
        for other in args.model_paths:  # the other models of the run take no memory either
            if other != model:
                drop_from_cache(other)
    rec["cached_before"] = drop_from_cache(model) if args.drop_cache else cached_fraction(model)
    rec["loadavg_before"] = os.getloadavg()[0]
    rec["cpu_busy_before"] = cpu_busy()
    rec["mem_free_before"] = meminfo().get("MemFree")
    rec["cmd"] = cmd
    print(f"  {engine}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    cg = None
    try:
        if use_cgroup:
            cg = Cgroup(f"roost-xbench-{os.getpid()}-{engine}", limit)
        try:
            res = run_process(cg.wrap(cmd) if cg else cmd, args.timeout)
        except TimeoutError as e:
            rec["error"] = str(e)
            return rec
        if cg:
            rec["cgroup"] = cg.stats()
            rec["cgroup"]["limit_bytes"] = cg.limit
    finally:
        if cg:
            cg.close()
    rec.update(wall_s=res["wall_s"], process_read_bytes=res["read_bytes"], maxrss_bytes=res["maxrss_bytes"])
    try:
        j = parse_roostd(res) if engine == "roostd" else bvl.parse_llamacpp_child(res["returncode"], res["stdout"], res["stderr"])
    except (RuntimeError, ValueError) as e:
        rec["error"] = str(e)
        if res["returncode"] < 0 or res["returncode"] == 137:
            rec["error"] += " (killed: out of memory in the group?)"
        return rec
    rec["result"] = j
    tps = j.get("gen_tokens_per_s")
    rec["gen_tokens_per_s"] = tps
    rec["peak_rss_bytes"] = j.get("peak_rss_bytes", res["maxrss_bytes"])
    if tps:
        est = window_read_bytes(res["io_series"], args.gen_tokens / tps)
        rec["disk_bytes_per_token_io_est"] = est / args.gen_tokens if est is not None else None
    if engine == "llamacpp":
        rec["disk_bytes_per_token"] = j.get("gen_disk_bytes_per_token")
    else:
        ex = j.get("experts") or {}
        rec["experts"] = ex or None
        rec["disk_bytes_per_token"] = ex.get("disk_bytes_per_token", rec.get("disk_bytes_per_token_io_est"))
        if ex and facts.get("routed_bytes_per_token") and ex.get("hit_rate") is not None:
            want = (1 - ex["hit_rate"]) * facts["routed_bytes_per_token"]
            got = rec.get("disk_bytes_per_token_io_est")
            rec["read_amplification"] = got / want if got is not None and want > 0 else None
    return rec


# ---- table, JSON, plot ----------------------------------------------------------------------

def parse_limits(text: str) -> list[float | None]:
    out: list[float | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part in ("none", "0", "1", "1.0", "inf"):
            out.append(None)
        elif part.endswith("%"):
            out.append(float(part[:-1]) / 100)
        else:
            out.append(float(part))
    return out


def human(n: float | None, unit: str = "B") -> str:
    if n is None:
        return "-"
    for u, s in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= s:
            return f"{n / s:.2f}{u}" if u == "G" else f"{n / s:.0f}{u}"
    return f"{n:.0f}"


def f(x, nd=2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def table(rows: list[dict]) -> str:
    head = ["limit", "model", "roostd t/s", "llama t/s", "ratio", "hit", "prefetch",
            "disk/tok roostd", "disk/tok llama", "RSS roostd", "RSS llama", "cg peak roostd",
            "cg peak llama", "budget", "notes"]
    body = []
    for r in rows:
        ro, ll = r.get("roostd") or {}, r.get("llamacpp") or {}
        a, b = ro.get("gen_tokens_per_s"), ll.get("gen_tokens_per_s")
        ex = ro.get("experts") or {}
        notes = []
        for who, x in (("roostd", ro), ("llama.cpp", ll)):
            if x.get("skipped"):
                notes.append(f"{who} skipped" + (" (unsupported architecture)" if "architecture" in x["skipped"]
                                                 else f": {x['skipped'][:60]}"))
                continue
            if x.get("error"):
                notes.append(f"{who}: {x['error'][:60]}")
            if x.get("cpu_busy_before") is not None and x["cpu_busy_before"] > 0.15:
                notes.append(f"{who}: CPUs {pct(x['cpu_busy_before'])} busy before")
            if x.get("mem_free_before") is not None and x.get("limit_bytes") and \
                    x["mem_free_before"] < 1.5 * x["limit_bytes"]:
                notes.append(f"{who}: only {human(x['mem_free_before'])}B free before")
            if x.get("cached_before") and x["cached_before"] > 0.01:
                notes.append(f"{who} started {pct(x['cached_before'])} cached")
        if ro.get("gen_tokens_per_s") and ll.get("gen_tokens_per_s") and ro.get("stream") != ll.get("stream"):
            notes.append(f"streams differ (roostd {ro.get('stream')})")
        if ro.get("gen_tokens_per_s") and r["limit"] is not None and not ro.get("budget_passed"):
            notes.append("roostd without --memory-budget")
        body.append([
            "none" if r["limit"] is None else f"{100 * r['limit']:.0f}%", r["model"],
            f(a), f(b), f(a / b if a and b else None), pct(ex.get("hit_rate")), pct(ex.get("prefetch_accuracy")),
            human(ro.get("disk_bytes_per_token")), human(ll.get("disk_bytes_per_token")),
            human(ro.get("peak_rss_bytes")), human(ll.get("peak_rss_bytes")),
            human((ro.get("cgroup") or {}).get("peak_bytes")), human((ll.get("cgroup") or {}).get("peak_bytes")),
            human(ro.get("budget_bytes") if ro.get("budget_passed") else None), "; ".join(notes)])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(c.ljust(w) if i in (1, len(cells) - 1) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(head)] + [line(b) for b in body])


def plot(rows: list[dict], path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    models = list(dict.fromkeys(r["model"] for r in rows))
    for mi, model in enumerate(models):
        for engine, label, style in (("roostd", "roostd (ExpertStore)", "o-"), ("llamacpp", "llama.cpp (mmap)", "s--")):
            pts = sorted(((1.0 if r["limit"] is None else r["limit"]), r[engine]["gen_tokens_per_s"])
                         for r in rows if r["model"] == model and (r.get(engine) or {}).get("gen_tokens_per_s"))
            if pts:
                ax.plot([100 * x for x, _ in pts], [y for _, y in pts], style, color=f"C{2 * mi + (engine == 'llamacpp')}",
                        label=f"{label}, {model}" if len(models) > 1 else label)
    ax.set_yscale("log")
    ax.set_xlabel("memory limit, % of the model file (100 = no limit)")
    ax.set_ylabel("decode tokens/s (log)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _on_term(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does: the child killed, the groups removed


def main() -> int:
    signal.signal(signal.SIGTERM, _on_term)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", metavar="MODEL.gguf[:TOKENS]",
                    help="one or more models (e.g. random and realistic routers); MODEL.gguf:FILE gives this "
                         "model its own token stream (e.g. the one make_realistic_router.py wrote)")
    ap.add_argument("--limits", default=DEFAULT_LIMITS,
                    help=f"memory limits as fractions of the file size, or none (default {DEFAULT_LIMITS})")
    ap.add_argument("--engines", default="roostd,llamacpp", help="roostd, llamacpp or both (default both)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--batch", type=int, default=512, help="llama.cpp n_batch (the prompt is one batch up to this)")
    ap.add_argument("--tokens-file", help="the fixed token stream for both engines (default: pseudo-random ids)")
    ap.add_argument("--stream", choices=["fixed", "greedy"], default="fixed",
                    help="fixed: both engines are fed the same stream (teacher forcing); greedy: each "
                         "generates its own greedy output from its own pseudo-random prompt")
    ap.add_argument("--budget-fraction", type=float, default=0.85, help="roostd --memory-budget = this x the limit")
    ap.add_argument("--no-drop-cache", dest="drop_cache", action="store_false",
                    help="do not evict the model file from the page cache before each run")
    ap.add_argument("--warmup", action="store_true",
                    help="llama.cpp: decode a short prompt and 3 tokens before the measured run (default off: "
                         "the measured prompt warms the cache, as for roostd)")
    ap.add_argument("--roostd", default=str(ROOT / ".build/release/roostd"))
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per engine run")
    ap.add_argument("--json", dest="json_out", metavar="OUT", help="write the results as JSON")
    ap.add_argument("--plot", metavar="PNG", help="write a plot of tokens/s against the limit")
    ap.add_argument("--from-json", metavar="IN", help="print the table (and --plot) of an earlier --json result; runs nothing")
    args = ap.parse_args()

    if args.from_json:
        with open(args.from_json) as fh:
            old = json.load(fh)
        print(table(old["rows"]))
        if args.plot:
            plot(old["rows"], args.plot, f"{', '.join(old['models'])}: {old['threads']} threads, stream {old['stream']}")
        return 0
    if not args.models:
        ap.error("give at least one MODEL.gguf")
    args.model_paths = [spec.partition(":")[0] for spec in args.models]
    engines = [e.strip().replace("llama.cpp", "llamacpp") for e in args.engines.split(",") if e.strip()]
    if bad := [e for e in engines if e not in ("roostd", "llamacpp")]:
        ap.error(f"unknown engine {bad[0]}")
    limits = parse_limits(args.limits)
    why = cgroup_usable()
    if why:
        print(f"note: {why}; limited runs are skipped, unlimited ones run without a group", file=sys.stderr)
    opts: set[str] = set()
    if "roostd" in engines:
        if not os.access(args.roostd, os.X_OK):
            print(f"note: {args.roostd} not found (swift build -c release --product roostd); roostd skipped", file=sys.stderr)
            engines.remove("roostd")
        else:
            opts = roostd_options(args.roostd)
            for o in ("--tokens-file", "--memory-budget"):
                if o not in opts:
                    print(f"note: this roostd bench has no {o}; runs without it", file=sys.stderr)


    tmpdir = tempfile.mkdtemp(prefix="roost-xbench-")
    rows: list[dict] = []
    all_facts: dict = {}
    try:
        for spec in args.models:
            model, _, own_tokens = spec.partition(":")
            facts = model_facts(model)
            name = Path(model).stem
            all_facts[name] = facts
            tokens_file = None
            if args.stream == "fixed":
                tokens_file = own_tokens or args.tokens_file
                if not tokens_file:
                    # beside the JSON output when there is one, so the result names a file that stays
                    base = (os.path.splitext(args.json_out)[0] + "." if args.json_out else os.path.join(tmpdir, ""))
                    tokens_file = f"{base}{name}.tokens"
                    ids = bvl.prompt_ids(args.prompt_tokens + args.gen_tokens, facts["n_vocab"] or 32000)
                    Path(tokens_file).write_text(" ".join(map(str, ids)) + "\n")
            print(f"[{name}] {facts['arch']}, {facts['file_bytes'] / 1e9:.2f} GB, "
                  f"routed experts {human(facts.get('routed_bytes_per_token'))}B per token", file=sys.stderr)
            roostd_unsupported = None
            for lim in limits:
                limit_bytes = None if lim is None else int(lim * facts["file_bytes"])
                row = {"model": name, "path": model, "limit": lim, "limit_bytes": limit_bytes,
                       "tokens_file": tokens_file}
                print(f"[{name}] limit {'none' if lim is None else f'{100 * lim:.0f}%'}", file=sys.stderr, flush=True)
                for engine in engines:
                    if lim is not None and why:
                        row[engine] = {"skipped": why}
                        continue
                    if engine == "roostd" and roostd_unsupported:
                        row[engine] = {"skipped": roostd_unsupported}
                        continue
                    rec = one_run(engine, args, model, facts, limit_bytes, tokens_file, opts, use_cgroup=not why)
                    row[engine] = rec
                    if engine == "roostd" and rec.get("error") and any(
                            w in rec["error"].lower() for w in ("unsupported", "not supported", "architecture")):
                        roostd_unsupported = "roostd: " + rec["error"].split(": ", 1)[-1][:120]
                        rec["skipped"] = roostd_unsupported
                        print(f"  roostd cannot run {name}: {rec['error'][-160:]}; skipping it for this model",
                              file=sys.stderr)
                    elif rec.get("error"):
                        print(f"  {engine} failed: {rec['error'][-300:]}", file=sys.stderr)
                    else:
                        print(f"  {engine}: {rec['gen_tokens_per_s']:.3f} tok/s, disk/token "
                              f"{human(rec.get('disk_bytes_per_token'))}B, cgroup peak "
                              f"{human((rec.get('cgroup') or {}).get('peak_bytes'))}B", file=sys.stderr, flush=True)
                rows.append(row)
    except KeyboardInterrupt:
        print("interrupted; partial results follow", file=sys.stderr)
    finally:
        for cg in list(Cgroup.live):
            cg.close()
        shutil.rmtree(tmpdir, ignore_errors=True)

    print(f"threads={args.threads} prompt_tokens={args.prompt_tokens} gen_tokens={args.gen_tokens} "
          f"stream={args.stream} budget={args.budget_fraction:.0%} of the limit  (ratio = roostd / llama.cpp; "
          f"disk/tok = bytes read from disk per generated token)")
    print(table(rows))
    for name, fa in all_facts.items():
        if fa.get("routed_bytes_per_token"):
            print(f"{name}: file {human(fa['file_bytes'])}B, dense {human(fa['dense_bytes'])}B, experts "
                  f"{human(fa['expert_bytes'])}B, routed experts per token {human(fa['routed_bytes_per_token'])}B")
    if args.json_out:
        for r in rows:
            for e in ("roostd", "llamacpp"):
                if isinstance(r.get(e), dict):
                    r[e].pop("io_series", None)
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json_out, "w") as fh:
            json.dump({"threads": args.threads, "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens,
                       "stream": args.stream, "budget_fraction": args.budget_fraction,
                       "llama_cpp_python": bvl._llama_version(), "roostd_options": sorted(opts),
                       "models": all_facts, "rows": rows}, fh, indent=2)
    if args.plot and rows:
        plot(rows, args.plot, f"{', '.join(all_facts)}: {args.threads} threads, stream {args.stream}, "
                              f"budget {args.budget_fraction:.0%} of the limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
