"""`make run` from a checkout: the daemon serves the demo model on ./.run/roost.sock, answers through
the socket, and Ctrl-C (SIGINT) stops it cleanly.

Run by `make test-run` (part of `make test`), after the release build it shares with the system tests.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOCK = REPO / ".run" / "roost.sock"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def test_make_run_serves_the_demo_model():
    if SOCK.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(SOCK))
            pytest.skip(f"a daemon is already listening on {SOCK}")
        except OSError:
            pass
        finally:
            probe.close()
    proc = subprocess.Popen(["make", "-s", "run"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 900
        while time.time() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"make run exited with {proc.returncode}: {proc.stdout.read().decode()[-3000:]}")
            if SOCK.exists():
                try:
                    c = UnixHTTPConnection(str(SOCK))
                    c.request("GET", "/health")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.2)
        else:
            raise AssertionError("make run did not start serving")
        c = UnixHTTPConnection(str(SOCK))
        c.request("POST", "/v1/chat/completions", json.dumps({
            "model": "roost-demo", "messages": [{"role": "user", "content": "Give me a proverb."}],
            "max_tokens": 24, "temperature": 0}), {"Content-Type": "application/json"})
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == 200, body
        assert body["choices"][0]["message"]["content"].strip()
        assert body["usage"]["completion_tokens"] >= 1
    finally:
        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    text = out.decode()
    assert "roost chat --socket" in text and "curl --unix-socket" in text
    # make itself also gets the SIGINT and reports it (-2) after roostd has exited; roostd must have
    # drained, saved the sessions and removed its socket.
    assert proc.returncode in (0, -signal.SIGINT), text[-3000:]
    assert "engine stopped; sessions saved" in text
    assert not SOCK.exists()
