"""roostd under systemd, without systemd as PID 1: the unit files (systemd-analyze verify and
security), socket activation through systemd-socket-activate, sd_notify messages (READY, STATUS,
WATCHDOG at half of WATCHDOG_USEC, STOPPING) on a datagram socket standing in for systemd's
NOTIFY_SOCKET, logs on stderr when stderr is not the journal, and the packaged config file.
Run by `make test-python` (ROOSTD = the debug roostd)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from test_server import MODEL, ROOSTD, UnixHTTPConnection, need_fixture

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
pytestmark = pytest.mark.skipif(not ROOSTD, reason="ROOSTD (path to roostd) is not set; run via make test-python")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is missing (Debian package systemd)")
        pytest.skip(f"{tool} is missing")
    return path


@pytest.fixture()
def workdir():
    d = Path(tempfile.mkdtemp(prefix="roost-systemd-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def installed_units(root: Path) -> Path:
    """The units with ExecStart pointing at the roostd under test (verify checks it exists)."""
    out = root / "units"
    out.mkdir()
    for name in ("roostd.service", "roostd.socket"):
        text = (UNITS / name).read_text().replace("/usr/bin/roostd", str(Path(ROOSTD).resolve()))
        (out / name).write_text(text)
    return out


def test_units_verify(workdir):
    need("systemd-analyze")
    units = installed_units(workdir)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(units / "roostd.socket"), str(units / "roostd.service")],
                       capture_output=True, text=True, timeout=120)
    # Lines about units other than ours (the host's) are not our business.
    ours = [l for l in (r.stdout + r.stderr).splitlines() if "roostd" in l]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr


def test_tcp_dropin_verifies(workdir):
    need("systemd-analyze")
    units = installed_units(workdir)
    dropin = units / "roostd.service.d"
    dropin.mkdir()
    text = (UNITS / "roostd-tcp.conf").read_text()
    (dropin / "tcp.conf").write_text(text.replace("/usr/bin/roostd", str(Path(ROOSTD).resolve())))
    assert "PrivateNetwork=no" in text and "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" in text
    assert "IPAddressAllow=localhost" in text
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(units / "roostd.service")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_security_exposure_at_most_2():
    need("systemd-analyze")
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNITS / "roostd.service")],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"Overall exposure level for roostd\.service: ([0-9.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    score = float(m.group(1))
    print(f"\nsystemd-analyze security: roostd.service exposure {score}")
    assert score <= 2.0, r.stdout


def test_unit_contract():
    service = (UNITS / "roostd.service").read_text()
    for line in ["Type=notify", "NotifyAccess=main", "WatchdogSec=30", "ExecStart=/usr/bin/roostd serve",
                 "ExecReload=/bin/kill -HUP $MAINPID", "User=roost", "Group=roost", "StateDirectory=roost",
                 "ConfigurationDirectory=roost", "CacheDirectory=roost", "RestrictAddressFamilies=AF_UNIX",
                 "IPAddressDeny=any", "PrivateNetwork=yes", "CapabilityBoundingSet=\n", "UMask=0077"]:
        assert line in service, line
    assert not re.search(r"^RuntimeDirectory=", service, re.M)  # it would remove /run/roost, and the socket, at stop
    sock = (UNITS / "roostd.socket").read_text()
    for line in ["ListenStream=/run/roost/roost.sock", "SocketMode=0660", "SocketGroup=roost", "Service=roostd.service"]:
        assert line in sock, line
    assert "roost" in (UNITS / "roost.sysusers").read_text()
    assert "/run/roost" in (UNITS / "roost.tmpfiles").read_text()


class NotifyListener:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET; records (time, line)."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self.lock:
                self.messages += [(now, line) for line in data.decode().split("\n") if line]

    def lines(self, prefix: str) -> list[tuple[float, str]]:
        with self.lock:
            return [(t, l) for t, l in self.messages if l.startswith(prefix)]

    def wait_for(self, prefix: str, timeout: float = 30) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.lines(prefix)
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no {prefix} within {timeout}s; got {self.messages}")

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


def http(path: str, method: str = "GET", target: str = "/health", body: str | None = None) -> tuple[int, bytes]:
    c = UnixHTTPConnection(path, timeout=60)
    c.request(method, target, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def test_socket_activation_and_notify(workdir):
    """systemd-socket-activate binds the socket and execs roostd on the first connection: that
    connection is served through the inherited fd; READY=1, STATUS=, WATCHDOG=1 (every half
    WATCHDOG_USEC) and STOPPING=1 reach NOTIFY_SOCKET; the socket file is left to its owner."""
    need("systemd-socket-activate")
    models = workdir / "models"
    models.mkdir()
    (models / f"{MODEL}.gguf").symlink_to(need_fixture())
    listen = workdir / "activated.sock"
    unused = workdir / "not-bound.sock"
    notify = NotifyListener(workdir / "notify")
    log = open(workdir / "roostd.log", "wb")
    watchdog_usec = 1_000_000
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC=str(watchdog_usec))
    env.pop("JOURNAL_STREAM", None)
    # systemd-socket-activate execs roostd in place, so the shell's pid is roostd's: WATCHDOG_PID.
    cmd = ["sh", "-c", 'export WATCHDOG_PID=$$; exec "$@"', "sh", "systemd-socket-activate", "-l", str(listen),
           "-E", "NOTIFY_SOCKET", "-E", "WATCHDOG_USEC", "-E", "WATCHDOG_PID",
           ROOSTD, "serve", "--socket", str(unused), "--models", str(models), "--state-dir", str(workdir / "state"),
           "--threads", "1", "--shutdown-grace", "2s"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while not listen.exists():
            assert proc.poll() is None and time.time() < deadline, (workdir / "roostd.log").read_text()
            time.sleep(0.02)
        assert not notify.messages  # nothing runs before the first connection
        # The first connection starts the daemon and must be answered.
        status, body = http(str(listen), target="/v1/models")
        assert status == 200, body
        assert MODEL.encode() in body
        ready_at, _ = notify.wait_for("READY=1")
        assert notify.lines("STATUS=")
        assert any("models" in l and "sessions" in l and "tokens/s" in l for _, l in notify.lines("STATUS="))
        assert not unused.exists(), "roostd bound --socket instead of using the inherited socket"
        status, body = http(str(listen), "POST", "/v1/chat/completions",
                            f'{{"model": "{MODEL}", "messages": [{{"role": "user", "content": "hi"}}], "max_tokens": 4, "temperature": 0}}')
        assert status == 200, body
        time.sleep(3)
        pings = [t for t, _ in notify.lines("WATCHDOG=1") if t >= ready_at - 1]
        assert len(pings) >= 4, notify.messages  # every 0.5 s
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert max(gaps) < watchdog_usec / 1e6, gaps
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (workdir / "roostd.log").read_text()
        notify.wait_for("STOPPING=1", timeout=5)
        assert listen.exists(), "roostd removed a socket it did not create"
        text = (workdir / "roostd.log").read_text()
        assert "listening on the socket passed by the service manager" in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        notify.close()


def test_socket_activation_refuses_a_wrong_socket(workdir):
    """A datagram socket as fd 3 (a broken socket unit) is an error naming the problem."""
    need("systemd-socket-activate")
    listen = workdir / "dgram.sock"
    proc = subprocess.Popen(["systemd-socket-activate", "--datagram", "-l", str(listen), ROOSTD, "serve",
                             "--socket", str(workdir / "x.sock"), "--models", str(workdir), "--state-dir", str(workdir / "s")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while not listen.exists():
            assert time.time() < deadline
            time.sleep(0.02)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"x", str(listen))
        s.close()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert b"not a listening AF_UNIX stream socket" in out, out


def test_logs_go_to_stderr_without_journal(workdir):
    """Without JOURNAL_STREAM (or when it names another file than stderr) logs are plain stderr
    lines, and no NOTIFY_SOCKET means no notifications are attempted."""
    models = workdir / "models"
    models.mkdir()
    for env_extra in ({}, {"JOURNAL_STREAM": "1:1"}):
        env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
        env.update(env_extra)
        sock = workdir / "plain.sock"
        proc = subprocess.Popen([ROOSTD, "serve", "--socket", str(sock), "--models", str(models), "--state-dir",
                                 str(workdir / "state")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 30
            while True:
                assert proc.poll() is None and time.time() < deadline
                try:
                    if http(str(sock))[0] == 200:
                        break
                except OSError:
                    time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0
        assert b"listening" in err and b"info" in err, err
        assert not sock.exists()


def test_packaged_config_lists_every_key_commented(workdir):
    toml = REPO / "packaging" / "roostd.toml"
    text = toml.read_text()
    printed = subprocess.run([ROOSTD, "serve", "--print-config"], capture_output=True, text=True, check=True).stdout
    keys = [l.split("=")[0].strip().lstrip("# ").strip() for l in printed.splitlines() if "=" in l]
    assert len(keys) >= 20
    for k in keys:
        assert re.search(rf"^# {re.escape(k)} = ", text, re.M), f"{k} is not in {toml}"
    assert not re.search(r"^[a-z]", text, re.M), "the packaged config must only hold comments"
    # Loading it changes nothing.
    with_file = subprocess.run([ROOSTD, "serve", "--config", str(toml), "--print-config"], capture_output=True,
                               text=True, check=True).stdout
    assert with_file == printed


def test_state_directory_sets_service_paths(workdir):
    env = dict(os.environ, STATE_DIRECTORY=str(workdir / "lib"))
    out = subprocess.run([ROOSTD, "serve", "--print-config"], env=env, capture_output=True, text=True, check=True).stdout
    assert f'state-dir = "{workdir}/lib"' in out
    assert f'models = "{workdir}/lib/models"' in out


def test_journal_stream_without_journald_keeps_stderr(workdir):
    """JOURNAL_STREAM naming stderr's device:inode selects the journal handler only when
    journald's socket exists (sd_journal_sendv drops messages silently without it). PID 1 here
    is not systemd, so the logs must still reach stderr."""
    if Path("/run/systemd/journal/socket").exists():
        pytest.skip("a real journal is running here; the messages would go there")
    models = workdir / "models"
    models.mkdir()
    sock = workdir / "j.sock"
    err_path = workdir / "stderr"
    with open(err_path, "wb") as err:
        st = os.fstat(err.fileno())
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        proc = subprocess.Popen([ROOSTD, "serve", "--socket", str(sock), "--models", str(models), "--state-dir",
                                 str(workdir / "state")], env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.time() + 30
            while True:
                assert proc.poll() is None and time.time() < deadline
                try:
                    if http(str(sock))[0] == 200:
                        break
                except OSError:
                    time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    text = err_path.read_text()
    assert "listening" in text and "info" in text, text
