"""`roostd serve` end to end: real clients over the Unix socket.

The official `openai` package (httpx with uds=), curl --unix-socket and Ollama-style requests
talk to a daemon serving the tiny RWKV-7 fixture; concurrency, bad input, a vanished client,
kill -9 with sessions on disk, peer credentials, config. Run by `make test-python`.
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO.parent / "shared" / "fixtures" / "rwkv-tiny" / "tiny-rwkv-7v0-834K-FP32.gguf"
ROOSTD = os.environ.get("ROOSTD")
MODEL = "tiny7"
pytestmark = pytest.mark.skipif(not ROOSTD, reason="ROOSTD (path to roostd) is not set; run via make test-python")


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
    """A roostd serve process on a temporary socket."""

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
        self.args = [ROOSTD, "serve", "--socket", self.sock, "--models", str(self.models), "--state-dir",
                     str(self.state), "--threads", "1", *extra]
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=self.log)
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

    def request(self, method: str, path: str, body: bytes | str | dict | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        c = UnixHTTPConnection(self.sock)
        if isinstance(body, dict):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def chat(self, content: str, max_tokens: int = 16, **kw) -> dict:
        status, _, data = self.request("POST", "/v1/chat/completions", {
            "model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
            "temperature": 0, **kw})
        assert status == 200, data
        return json.loads(data)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture()
def workdir():
    d = Path(tempfile.mkdtemp(prefix="roost-serve-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture()
def daemon(workdir):
    d = Daemon(workdir)
    yield d
    assert d.stop() == 0, d.logtext()


def test_openai_client_over_the_socket(daemon):
    import httpx
    import openai

    client = openai.OpenAI(base_url="http://roost/v1", api_key="unused",
                           http_client=httpx.Client(transport=httpx.HTTPTransport(uds=daemon.sock)))
    assert [m.id for m in client.models.list().data] == [MODEL]
    full = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}],
                                          max_tokens=12, temperature=0)
    assert full.choices[0].finish_reason == "length"
    assert full.usage.completion_tokens == 12
    text = full.choices[0].message.content
    assert text
    pieces = []
    usage = None
    for chunk in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}],
                                                max_tokens=12, temperature=0, stream=True,
                                                stream_options={"include_usage": True}):
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            pieces.append(c.delta.content or "")
    assert "".join(pieces) == text
    assert usage is not None and usage.completion_tokens == 12
    comp = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=8, temperature=0)
    assert comp.choices[0].text and comp.usage.completion_tokens == 8
    # Same seed, same output at temperature 1.
    a = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=10, seed=7)
    b = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=10, seed=7)
    assert a.choices[0].message.content == b.choices[0].message.content
    lp = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
                                        temperature=0, logprobs=True, top_logprobs=3)
    entries = lp.choices[0].logprobs.content
    assert len(entries) == 4 and all(len(e.top_logprobs) == 3 for e in entries)
    assert all(e.logprob <= 0 for e in entries)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "x"}])


def test_curl_and_ollama(daemon):
    out = subprocess.run(["curl", "-s", "--unix-socket", daemon.sock, "http://localhost/v1/chat/completions",
                          "-H", "Content-Type: application/json", "-d",
                          json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                                      "max_tokens": 5, "temperature": 0})],
                         capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout)["usage"]["completion_tokens"] == 5
    status, headers, data = daemon.request("POST", "/api/chat", {
        "model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "options": {"num_predict": 6, "temperature": 0}})
    assert status == 200 and headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(x) for x in data.decode().splitlines() if x]
    assert lines[-1]["done"] is True and lines[-1]["eval_count"] == 6
    streamed = "".join(x["message"]["content"] for x in lines)
    status, _, data = daemon.request("POST", "/api/chat", {
        "model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": False,
        "options": {"num_predict": 6, "temperature": 0}})
    assert json.loads(data)["message"]["content"] == streamed
    status, _, data = daemon.request("POST", "/api/generate", {"model": MODEL, "prompt": "Hi", "stream": False,
                                                               "options": {"num_predict": 3}})
    assert status == 200 and json.loads(data)["done"] is True
    for path in ("/api/tags", "/api/ps", "/api/version"):
        assert daemon.request("GET", path)[0] == 200


def test_concurrent_clients_match_single_client(daemon):
    prompts = [f"Client {i} asks about topic {i * 7}" for i in range(16)]
    single = {p: daemon.chat(p, 16)["choices"][0]["message"]["content"] for p in prompts}

    def client(p: str) -> list[str]:
        return [daemon.chat(p, 16)["choices"][0]["message"]["content"] for _ in range(3)]

    with ThreadPoolExecutor(16) as pool:
        results = dict(zip(prompts, pool.map(client, prompts)))
    for p in prompts:
        assert results[p] == [single[p]] * 3, p


def test_bad_input_and_vanished_client(workdir):
    d = Daemon(workdir, "--max-body", "64KiB")
    try:
        cases = [
            (b'{"model": ', 400),
            (json.dumps({"model": MODEL, "messages": "hi"}), 400),
            (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": 5}]}), 400),
            (json.dumps({"model": "nope", "messages": [{"role": "user", "content": "x"}]}), 404),
            (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x" * 100_000}]}), 413),
            (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "tools": [{}]}), 400),
            ("[" * 200 + "]" * 200, 400),
        ]
        for body, want in cases:
            status, _, data = d.request("POST", "/v1/chat/completions", body)
            assert status == want, (body[:60], data)
            err = json.loads(data)["error"]
            assert err["message"] and err["type"]
        # A client that goes away mid-stream: its generation stops, the daemon keeps serving.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Tell"}], "max_tokens": 100000,
                           "stream": True, "temperature": 0}).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert s.recv(100)
        s.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            stats = json.loads(d.request("GET", "/roost/v1/stats")[2])
            if stats["active"] == 0:
                break
            time.sleep(0.05)
        assert stats["active"] == 0
        assert d.chat("still there?", 3)["usage"]["completion_tokens"] == 3
    finally:
        assert d.stop() == 0


def test_sessions_survive_kill_9(workdir):
    d = Daemon(workdir)
    ids = []
    for i in range(4):
        status, _, data = d.request("POST", "/v1/sessions", {"model": MODEL})
        assert status == 201
        sid = json.loads(data)["id"]
        ids.append(sid)
        d.chat(f"Session {i} first turn", 6, session=sid)
    # Kill during a long generation on one of them.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.sock)
    body = json.dumps({"model": MODEL, "session": ids[0], "messages": [{"role": "user", "content": "Go"}],
                       "max_tokens": 100000, "stream": True, "temperature": 0}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert s.recv(100)
    d.stop(signal.SIGKILL)
    s.close()
    files = sorted(p.name for p in (workdir / "state" / "sessions").iterdir() if p.name.endswith(".session")
                   and not p.name.startswith("."))
    assert files == sorted(f"{i}.session" for i in ids)
    # The stale socket of the killed daemon is replaced by the restarted one.
    d2 = Daemon(workdir, name="d")
    try:
        listed = json.loads(d2.request("GET", "/v1/sessions")[2])["data"]
        assert sorted(x["id"] for x in listed) == sorted(ids)
        for x in listed:
            assert x["turns"] == 1
            assert d2.chat("second turn", 4, session=x["id"])["usage"]["completion_tokens"] == 4
    finally:
        assert d2.stop() == 0


def test_live_socket_is_not_stolen_and_sigterm_cleans_up(workdir):
    d = Daemon(workdir)
    second = subprocess.run([ROOSTD, "serve", "--socket", d.sock, "--models", str(d.models), "--state-dir",
                             str(workdir / "state2")], capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    assert "another roostd is listening" in second.stderr
    assert d.request("GET", "/health")[0] == 200
    assert d.stop(signal.SIGTERM) == 0
    assert not os.path.exists(d.sock)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to act as another uid")
def test_peer_not_on_the_allow_list_gets_403(workdir):
    d = Daemon(workdir, "--socket-mode", "0666")
    try:
        mode = os.stat(d.sock).st_mode & 0o777
        assert mode == 0o666
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "curl", "-s", "-o",
                              "/dev/null", "-w", "%{http_code}", "--unix-socket", d.sock,
                              "http://localhost/v1/models"], capture_output=True, text=True, timeout=30)
        assert out.stdout == "403", out
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "curl", "-s", "-o",
                              "/dev/null", "-w", "%{http_code}", "--unix-socket", d.sock,
                              "http://localhost/v1/models"], capture_output=True, text=True, timeout=30)
        assert out.stdout == "403"
        assert d.request("GET", "/v1/models")[0] == 200
    finally:
        assert d.stop() == 0
    d2 = Daemon(workdir, "--socket-mode", "0666", "--allow-uid", "65534", name="d2")
    try:
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "curl", "-s", "-o",
                              "/dev/null", "-w", "%{http_code}", "--unix-socket", d2.sock,
                              "http://localhost/v1/models"], capture_output=True, text=True, timeout=30)
        assert out.stdout == "200"
    finally:
        assert d2.stop() == 0


def test_config_file_and_flags(workdir):
    cfg = workdir / "roostd.toml"
    cfg.write_text('max-sessions = 3\nkeep-alive = "30s"\nsocket = "/tmp/from-file.sock"\nallow-uid = [1000, 1001]\n')
    out = subprocess.run([ROOSTD, "serve", "--config", str(cfg), "--print-config", "--max-sessions", "5"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "max-sessions = 5\n" in out.stdout
    assert 'keep-alive = "30s"' in out.stdout
    assert 'socket = "/tmp/from-file.sock"' in out.stdout
    assert "allow-uid = [1000, 1001]" in out.stdout
    cfg.write_text("max-sesions = 3\n")
    out = subprocess.run([ROOSTD, "serve", "--config", str(cfg), "--print-config"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and "unknown key 'max-sesions'" in out.stderr


def test_admission_timeout_budget_keepalive_and_tcp(workdir):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = Daemon(workdir, "--max-sessions", "1", "--max-queue", "1", "--keep-alive", "1s", "--request-timeout", "3s",
               "--tcp", f"127.0.0.1:{port}")
    try:
        # Loopback TCP answers too.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/v1/models")
        assert c.getresponse().status == 200
        c.close()
        # One running, one queued, the third is refused with 429 and Retry-After.
        held = []
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Go"}],
                               "max_tokens": 100000, "stream": True, "temperature": 0}).encode()
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            held.append(s)
        deadline = time.time() + 10
        while json.loads(d.request("GET", "/roost/v1/stats")[2])["queue"] < 1 and time.time() < deadline:
            time.sleep(0.02)
        status, headers, data = d.request("POST", "/v1/chat/completions", {
            "model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2})
        assert status == 429, data
        assert int(headers["Retry-After"]) >= 1
        assert json.loads(data)["error"]["type"] == "rate_limit_error"
        for s in held:
            s.close()
        # The request timeout ends a long generation.
        deadline = time.time() + 10
        while json.loads(d.request("GET", "/roost/v1/stats")[2])["active"] > 0 and time.time() < deadline:
            time.sleep(0.05)
        t0 = time.time()
        status, _, data = d.request("POST", "/v1/chat/completions", {
            "model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 10_000_000, "temperature": 0})
        assert status == 503 and "timed out" in json.loads(data)["error"]["message"]
        assert time.time() - t0 < 15
        # keep-alive 1s: the model is unloaded soon after the last request.
        deadline = time.time() + 15
        while json.loads(d.request("GET", "/api/ps")[2])["models"] and time.time() < deadline:
            time.sleep(0.2)
        assert json.loads(d.request("GET", "/api/ps")[2])["models"] == []
    finally:
        assert d.stop() == 0
    small = Daemon(workdir, "--memory-budget", "1KiB", name="small")
    try:
        status, headers, data = small.request("POST", "/v1/chat/completions", {
            "model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2})
        assert status == 503 and "Retry-After" in headers, data
        assert "memory budget" in json.loads(data)["error"]["message"]
    finally:
        assert small.stop() == 0


def test_json_schema_output(daemon):
    import httpx
    import jsonschema
    import openai

    client = openai.OpenAI(base_url="http://roost/v1", api_key="unused",
                           http_client=httpx.Client(transport=httpx.HTTPTransport(uds=daemon.sock)))
    schema = {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
        "ok": {"type": "boolean"}}, "required": ["name", "age", "tags", "ok"]}
    for seed in range(4):
        r = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Describe a person as JSON"}], max_tokens=400, seed=seed,
            response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
        assert r.choices[0].finish_reason == "stop", r
        doc = json.loads(r.choices[0].message.content)
        jsonschema.validate(doc, schema)
        assert list(doc) == ["name", "age", "tags", "ok"]
    # Free-form strings can run past max_tokens (a truncated document, finish_reason "length");
    # every document that ends is a JSON object.
    finished = 0
    for seed in range(6):
        r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "JSON please"}],
                                           max_tokens=600, seed=seed, response_format={"type": "json_object"})
        if r.choices[0].finish_reason == "stop":
            finished += 1
            assert isinstance(json.loads(r.choices[0].message.content), dict)
    assert finished >= 1
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], response_format={
            "type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object", "not": {}}}})
    assert "not" in str(e.value)
    status, _, data = daemon.request("POST", "/api/chat", {
        "model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": False, "format": schema,
        "options": {"num_predict": 400, "seed": 3}})
    assert status == 200
    jsonschema.validate(json.loads(json.loads(data)["message"]["content"]), schema)


def test_sighup_rescans_models(workdir):
    d = Daemon(workdir)
    try:
        assert [m["id"] for m in json.loads(d.request("GET", "/v1/models")[2])["data"]] == [MODEL]
        (d.models / "second.gguf").symlink_to(need_fixture())
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            ids = [m["id"] for m in json.loads(d.request("GET", "/v1/models")[2])["data"]]
            if "second" in ids:
                break
            time.sleep(0.05)
        assert sorted(ids) == ["second", MODEL]
    finally:
        assert d.stop() == 0
