"""Real chat templates for the chat-template oracle test, taken from llama-cpp-python's sdist.

llama-cpp-python==0.3.36's source distribution vendors llama.cpp, whose
`models/templates/*.jinja` are the chat templates of many model families as their
tokenizer_config.json ships them. This script downloads that sdist from PyPI (the JSON API,
falling back to the simple index), checks its sha256 against what PyPI publishes and the
pinned value below, and extracts only the templates into `.cache/chat-templates/` at the
repository root. The templates are another project's data: they are not committed here.

    python tools/chat_template_sources.py        # prints the template paths

Set ROOST_LLAMA_CPP_SDIST to a local copy of the sdist to skip the download (it must match
the pinned sha256).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tarfile
import urllib.request
from pathlib import Path

PACKAGE = "llama-cpp-python"
VERSION = "0.3.36"
SDIST_NAME = f"llama_cpp_python-{VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
JSON_URL = f"https://pypi.org/pypi/{PACKAGE}/{VERSION}/json"
SIMPLE_URL = f"https://pypi.org/simple/{PACKAGE}/"
TEMPLATE_DIR = "vendor/llama.cpp/models/templates/"

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"


class SourceUnavailable(RuntimeError):
    """PyPI could not be reached (or did not have the file)."""


def _get(url: str, timeout: float = 60) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "roost-tools"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def sdist_location() -> tuple[str, str]:
    """(url, sha256) of the sdist as PyPI publishes it."""
    errors = []
    try:
        meta = json.loads(_get(JSON_URL))
        for f in meta.get("urls", []):
            if f.get("packagetype") == "sdist" and f.get("filename") == SDIST_NAME:
                return f["url"], f["digests"]["sha256"]
        errors.append(f"{JSON_URL}: no sdist named {SDIST_NAME}")
    except Exception as e:  # noqa: BLE001 - any network or format failure falls back
        errors.append(f"{JSON_URL}: {e}")
    try:
        page = _get(SIMPLE_URL, timeout=30).decode("utf-8", "replace")
        m = re.search(r'href="([^"#]*' + re.escape(SDIST_NAME) + r')#sha256=([0-9a-f]{64})"', page)
        if m:
            return urllib.request.urljoin(SIMPLE_URL, m.group(1)), m.group(2)
        errors.append(f"{SIMPLE_URL}: no link to {SDIST_NAME}")
    except Exception as e:  # noqa: BLE001
        errors.append(f"{SIMPLE_URL}: {e}")
    raise SourceUnavailable("; ".join(errors))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sdist_path(cache: Path = CACHE) -> Path:
    """The verified sdist, downloaded into the cache when missing."""
    local = os.environ.get("ROOST_LLAMA_CPP_SDIST")
    if local:
        p = Path(local)
        if _sha256(p) != SDIST_SHA256:
            raise RuntimeError(f"{p}: sha256 is not {SDIST_SHA256}")
        return p
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / SDIST_NAME
    if target.exists() and _sha256(target) == SDIST_SHA256:
        return target
    url, sha = sdist_location()
    if sha != SDIST_SHA256:
        raise RuntimeError(f"PyPI lists sha256 {sha} for {SDIST_NAME}, expected {SDIST_SHA256}")
    try:
        data = _get(url, timeout=300)
    except Exception as e:  # noqa: BLE001
        raise SourceUnavailable(f"{url}: {e}") from e
    if hashlib.sha256(data).hexdigest() != sha:
        raise RuntimeError(f"{url}: downloaded file does not match sha256 {sha}")
    tmp = target.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


def template_paths(cache: Path = CACHE) -> list[Path]:
    """Paths of the extracted *.jinja templates, sorted by name."""
    out_dir = cache / "chat-templates"
    stamp = out_dir / ".complete"
    if not stamp.exists():
        sdist = sdist_path(cache)
        out_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar.getmembers():
                name = member.name
                if not member.isfile() or TEMPLATE_DIR not in name or not name.endswith(".jinja"):
                    continue
                rel = name.split(TEMPLATE_DIR, 1)[1]
                if "/" in rel or rel.startswith("."):
                    continue
                f = tar.extractfile(member)
                if f is None:
                    continue
                (out_dir / rel).write_bytes(f.read())
        stamp.write_text(f"{SDIST_NAME} {SDIST_SHA256}\n")
    return sorted(out_dir.glob("*.jinja"))


if __name__ == "__main__":
    try:
        for p in template_paths():
            print(p)
    except SourceUnavailable as e:
        print(f"PyPI unreachable: {e}", file=sys.stderr)
        sys.exit(2)
