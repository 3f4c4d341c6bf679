"""`roost`, the command-line client, against a real `roostd serve` on a temporary socket.

Exit codes and --json output of models, ps, run, sessions and stats; `run` at temperature 0
prints what /v1/chat/completions answers; `chat` driven through a pipe; the message when
nothing listens. Needs ROOSTD and ROOST (paths of the debug binaries); run by `make test-python`.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO.parent / "shared" / "fixtures" / "rwkv-tiny" / "tiny-rwkv-7v0-834K-FP32.gguf"
ROOSTD = os.environ.get("ROOSTD")
ROOST = os.environ.get("ROOST")
MODEL = "tiny7"
pytestmark = [
    pytest.mark.skipif(not ROOSTD, reason="ROOSTD (path to roostd) is not set; run via make test-python"),
    pytest.mark.skipif(not ROOST, reason="ROOST (path to the roost client) is not set; run via make test-python"),
]


def need_fixture() -> Path:
    if not FIXTURE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared fixture missing: {FIXTURE}")
        pytest.skip(f"shared fixture missing: {FIXTURE}")
    return FIXTURE


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class Daemon:
    """A roostd serve process on a temporary socket (as in test_server.py)."""

    def __init__(self, root: Path, *extra: str, name: str = "d"):
        self.root = root
        self.sock = str(root / f"{name}.sock")
        self.models = root / "models"
        self.models.mkdir(exist_ok=True)
        link = self.models / f"{MODEL}.gguf"
        if not link.exists():
            link.symlink_to(need_fixture())
        self.state = root / "state"
        self.log = open(root / f"{name}.log", "ab")
        self.proc = subprocess.Popen([ROOSTD, "serve", "--socket", self.sock, "--models", str(self.models),
                                      "--state-dir", str(self.state), "--threads", "1", *extra],
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"roostd exited with {self.proc.returncode}: {self.logtext()}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("roostd did not start: " + self.logtext())

    def logtext(self) -> str:
        self.log.flush()
        return (self.root / Path(self.log.name).name).read_text(errors="replace")[-4000:]

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        c = UnixHTTPConnection(self.sock)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="roost-client-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon(workdir):
    d = Daemon(workdir)
    yield d
    assert d.stop() == 0, d.logtext()


def roost(d: Daemon | str | None, *args: str, input: str | bytes | None = None, env: dict | None = None,
          text: bool = True) -> subprocess.CompletedProcess:
    """Runs the client; `d` gives the socket (a Daemon, a path, or None for the environment's)."""
    sock = d.sock if isinstance(d, Daemon) else d
    cmd = [ROOST, *args]
    if sock is not None:
        cmd += ["--socket", sock]
    environment = {k: v for k, v in os.environ.items() if k not in ("ROOST_SOCKET",)}
    environment.update(env or {})
    if isinstance(input, str) and not text:
        input = input.encode()
    return subprocess.run(cmd, input=input, capture_output=True, text=text, timeout=120, env=environment)


def ok_json(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_models_and_ps(daemon):
    out = ok_json(roost(daemon, "models", "--json"))
    assert [m["id"] for m in out["models"]] == [MODEL]
    assert out["models"][0]["size_bytes"] == FIXTURE.stat().st_size
    assert out["models"][0]["details"]["family"]
    assert out["unusable"] == []
    human = roost(daemon, "models")
    assert human.returncode == 0 and human.stdout.splitlines()[0].split()[:2] == ["NAME", "SIZE"]
    assert MODEL in human.stdout
    # Load the model, then it is listed by ps.
    assert daemon.request("POST", "/v1/chat/completions", {
        "model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1})[0] == 200
    ps = ok_json(roost(daemon, "ps", "--json"))
    assert [m["name"] for m in ps["models"]] == [MODEL]
    assert MODEL in roost(daemon, "ps").stdout


def test_run_matches_the_daemon(daemon):
    prompt = "Tell me about the sea"
    status, data = daemon.request("POST", "/v1/chat/completions", {
        "model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": 20, "temperature": 0})
    assert status == 200
    expected = json.loads(data)["choices"][0]["message"]["content"]
    assert expected
    out = roost(daemon, "run", "--temperature", "0", "--max-tokens", "20", prompt)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected + "\n"
    # The prompt from stdin, the model named explicitly.
    out = roost(daemon, "run", "--model", MODEL, "--temperature", "0", "--max-tokens", "20", input=prompt)
    assert out.returncode == 0 and out.stdout == expected + "\n"
    # --json prints the daemon's chat.completion.
    comp = ok_json(roost(daemon, "run", "--json", "--temperature", "0", "--max-tokens", "20", prompt))
    assert comp["object"] == "chat.completion"
    assert comp["choices"][0]["message"]["content"] == expected
    assert comp["usage"]["completion_tokens"] == 20
    # Same seed, same answer.
    a = roost(daemon, "run", "--seed", "11", "--max-tokens", "8", "Hi")
    b = roost(daemon, "run", "--seed", "11", "--max-tokens", "8", "Hi")
    assert a.returncode == 0 and a.stdout == b.stdout


def test_errors_and_usage(daemon):
    out = roost(daemon, "run", "--model", "missing", "Hi")
    assert out.returncode == 1 and "missing" in out.stderr and out.stdout == ""
    out = roost(daemon, "run", "--temperature", "7", "Hi")
    assert out.returncode == 2 and "temperature" in out.stderr
    out = roost(daemon, "run", "--bogus-flag")
    assert out.returncode == 2
    out = roost(daemon, "run", input="  \n")
    assert out.returncode == 2 and "empty" in out.stderr
    out = roost(daemon, "sessions", "show", "no-such-session")
    assert out.returncode == 1 and "404" in out.stderr
    assert roost(None, "--help").returncode == 0
    assert roost(None, "--version").returncode == 0


def test_not_running(workdir):
    sock = str(workdir / "nobody-here.sock")
    for args in (["models"], ["stats", "--json"], ["run", "Hi"]):
        out = roost(sock, *args)
        assert out.returncode == 1, out
        assert sock in out.stderr and "not running" in out.stderr
        assert "systemctl start roostd.socket" in out.stderr and "make run" in out.stderr
    # A stale socket file (nothing accepts): the same message.
    stale = workdir / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()
    out = roost(str(stale), "ps")
    assert out.returncode == 1 and str(stale) in out.stderr and "connection refused" in out.stderr
    # The socket from the environment when --socket is absent.
    out = roost(None, "models", env={"ROOST_SOCKET": sock})
    assert out.returncode == 1 and sock in out.stderr
    out = roost(None, "models", env={"XDG_RUNTIME_DIR": str(workdir)})
    expected = f"{workdir}/roost/roost.sock" if os.geteuid() != 0 else "/run/roost/roost.sock"
    assert expected in out.stderr


def test_sessions_commands(daemon, workdir):
    status, data = daemon.request("POST", "/v1/sessions", {"model": MODEL})
    assert status == 201
    sid = json.loads(data)["id"]
    out = roost(daemon, "run", "--session", sid, "--max-tokens", "5", "--temperature", "0", "First turn")
    assert out.returncode == 0, out.stderr
    listed = ok_json(roost(daemon, "sessions", "list", "--json"))
    assert sid in [s["id"] for s in listed["data"]]
    assert sid in roost(daemon, "sessions").stdout  # list is the default
    shown = ok_json(roost(daemon, "sessions", "show", sid, "--json"))
    assert shown["id"] == sid and shown["model"] == MODEL and shown["turns"] == 1 and shown["tokens"] > 0
    assert "turns:    1" in roost(daemon, "sessions", "show", sid).stdout

    blob = workdir / "exported.session"
    exported = ok_json(roost(daemon, "sessions", "export", sid, "-o", str(blob), "--json"))
    assert exported["bytes"] == blob.stat().st_size > 0
    raw = roost(daemon, "sessions", "export", sid, "-o", "-", text=False)
    assert raw.returncode == 0 and raw.stdout == blob.read_bytes()

    removed = ok_json(roost(daemon, "sessions", "rm", sid, "--json"))
    assert removed == {"id": sid, "object": "session.deleted", "deleted": True}
    assert roost(daemon, "sessions", "show", sid).returncode == 1

    imported = ok_json(roost(daemon, "sessions", "import", str(blob), "--json"))
    assert imported["model"] == MODEL and imported["turns"] == 1
    again = roost(daemon, "sessions", "import", "-", input=blob.read_bytes(), text=False)
    assert again.returncode == 0 and b"imported as" in again.stdout
    out = roost(daemon, "sessions", "import", str(workdir / "missing.session"))
    assert out.returncode == 1 and "missing.session" in out.stderr
    bad = workdir / "bad.session"
    bad.write_bytes(b"not a session")
    out = roost(daemon, "sessions", "import", str(bad))
    assert out.returncode == 1 and "400" in out.stderr
    for s in ok_json(roost(daemon, "sessions", "list", "--json"))["data"]:
        assert roost(daemon, "sessions", "rm", s["id"]).returncode == 0


def test_stats(daemon):
    stats = ok_json(roost(daemon, "stats", "--json"))
    assert {"version", "models", "sessions", "queue", "active", "rss_bytes"} <= stats.keys()
    assert stats["rss_bytes"] > 0
    assert [m["name"] for m in stats["models"]] == [MODEL]
    human = roost(daemon, "stats")
    assert human.returncode == 0 and "TOK/S" in human.stdout and "rss" in human.stdout
    # --watch --json: one JSON line per refresh until interrupted.
    # SIGINT at its default, as for a terminal's foreground process (a job that a shell without
    # job control started in the background inherits it ignored).
    p = subprocess.Popen([ROOST, "stats", "--watch", "--json", "--interval", "0.2", "--socket", daemon.sock],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = [p.stdout.readline() for _ in range(3)]
    p.send_signal(signal.SIGINT)
    p.wait(timeout=10)
    assert all(json.loads(x)["models"][0]["name"] == MODEL for x in lines)
    assert roost(daemon, "stats", "--watch", "--interval", "0").returncode == 2


def test_chat_through_a_pipe(daemon):
    before = {s["id"] for s in ok_json(roost(daemon, "sessions", "list", "--json"))["data"]}
    script = "Hello there\n/help\nHow are you?\n/save\nAnd now?\n/quit\nnever sent\n"
    out = roost(daemon, "chat", "--max-tokens", "6", "--temperature", "0", input=script)
    assert out.returncode == 0, out.stderr
    assert "/load ID" in out.stdout
    saved = [line for line in out.stdout.splitlines() if line.startswith("Saved as session ")]
    assert len(saved) == 1
    sid = saved[0].split()[3].rstrip(".")
    after = ok_json(roost(daemon, "sessions", "list", "--json"))["data"]
    assert {s["id"] for s in after} - before == {sid}
    # The turn after /save carried the whole conversation into the session.
    shown = ok_json(roost(daemon, "sessions", "show", sid, "--json"))
    assert shown["turns"] == 1 and shown["tokens"] > 20
    # The stateless turns answer what a direct request with the same history answers.
    first = daemon.request("POST", "/v1/chat/completions", {
        "model": MODEL, "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 6,
        "temperature": 0})[1]
    assert json.loads(first)["choices"][0]["message"]["content"] in out.stdout
    # Continue it with --session; /reset, an unknown command; end of input ends the chat.
    out = roost(daemon, "chat", "--session", sid, "--max-tokens", "4", input="More\n/reset\n/nope\nAgain\n")
    assert out.returncode == 0, out.stderr
    assert "Conversation cleared." in out.stdout and "Unknown command /nope" in out.stdout
    assert ok_json(roost(daemon, "sessions", "show", sid, "--json"))["turns"] == 2
    out = roost(daemon, "chat", input="/load nonexistent\n/quit\n")
    assert out.returncode == 0 and "404" in out.stderr
    assert roost(daemon, "sessions", "rm", sid).returncode == 0


def test_model_choice_with_several_models(workdir):
    other = FIXTURE.parent / "tiny-rwkv-7v0-834K-FP16.gguf"
    if not other.exists():
        pytest.skip(f"shared fixture missing: {other}")
    root = workdir / "two"
    root.mkdir()
    (root / "models").mkdir()
    (root / "models" / "second.gguf").symlink_to(other)
    d = Daemon(root, name="two")
    try:
        out = roost(d, "run", "--max-tokens", "2", "Hi")
        assert out.returncode == 2, out
        assert "--model" in out.stderr and "second" in out.stderr and MODEL in out.stderr
        out = roost(d, "run", "--model", "second", "--max-tokens", "2", "Hi")
        assert out.returncode == 0, out.stderr
    finally:
        assert d.stop() == 0


def test_run_interrupted(daemon):
    # Greedy decoding (it never picks end-of-text here); stdout to a file so a full pipe cannot block the client.
    out_path = Path(daemon.sock).with_suffix(".out")
    with open(out_path, "wb") as out:
        p = subprocess.Popen([ROOST, "run", "--max-tokens", "100000", "--temperature", "0", "--socket", daemon.sock,
                              "Go on and on"], stdout=out, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while out_path.stat().st_size == 0 and time.time() < deadline:
            time.sleep(0.02)
        assert out_path.stat().st_size > 0
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=20) == 130
    # The daemon dropped the generation.
    deadline = time.time() + 10
    while time.time() < deadline:
        stats = json.loads(daemon.request("GET", "/roost/v1/stats")[1])
        if stats["active"] == 0:
            break
        time.sleep(0.1)
    assert stats["active"] == 0


def test_completion_script():
    out = roost(None, "--generate-completion-script", "bash")
    assert out.returncode == 0 and "_roost" in out.stdout and "sessions" in out.stdout


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to act as another uid")
def test_refused_user(workdir):
    d = Daemon(workdir, "--socket-mode", "0666", name="refusing")
    try:
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ROOST, "models",
                              "--socket", d.sock], capture_output=True, text=True, timeout=60)
        if "Permission denied" in out.stderr and "refused" not in out.stderr:
            pytest.skip("the roost binary is not executable by uid 65534 here")
        assert out.returncode == 1, out
        assert "refused this user (uid 65534)" in out.stderr and "--allow-uid" in out.stderr
    finally:
        assert d.stop() == 0
