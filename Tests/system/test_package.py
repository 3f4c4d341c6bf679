"""The .deb (ROOST_DEB, made by `make deb`): its contents, lintian, and an install with dpkg into
a clean Debian root made by debootstrap, where `roostd --version` must run without a Swift
toolchain. The root is cached as a tarball under .cache/ so reruns take seconds. Run by
`make test-system` (as root: debootstrap and chroot need it)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEB = os.environ.get("ROOST_DEB")
CI = os.environ.get("CI") == "true"
SUITE = "bookworm"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = REPO / ".cache" / f"debian-{SUITE}-minbase.tar"
# Runtime libraries the package depends on, preinstalled so dpkg -i needs no network.
INCLUDE = "libopenblas0-pthread,libsystemd0,init-system-helpers,libstdc++6,libgcc-s1"
VERSION = re.search(r'static let string = "(.*)"', (REPO / "Sources/roostd/Version.swift").read_text()).group(1)

pytestmark = pytest.mark.skipif(not DEB, reason="ROOST_DEB is not set; run via make test-system")


def skip_or_fail(why: str):
    if CI:
        pytest.fail(why)
    pytest.skip(why)


def run(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def test_contents_and_control():
    info = run("dpkg-deb", "--info", DEB).stdout
    contents = run("dpkg-deb", "--contents", DEB).stdout
    for path in ["./usr/bin/roostd", "./lib/systemd/system/roostd.service", "./lib/systemd/system/roostd.socket",
                 "./usr/lib/sysusers.d/roost.conf", "./usr/lib/tmpfiles.d/roost.conf", "./etc/roost/roostd.toml",
                 "./usr/share/man/man1/roostd.1.gz", "./usr/share/bash-completion/completions/roostd",
                 "./usr/share/zsh/vendor-completions/_roostd", "./usr/share/fish/vendor_completions.d/roostd.fish",
                 "./usr/share/doc/roost/copyright", "./usr/share/doc/roost/SYSTEMD.md",
                 "./usr/share/doc/roost/examples/roostd-tcp.conf"]:
        assert path in contents, path
    if (REPO / ".build/release/roost").exists():
        assert re.search(r" \./usr/bin/roost$", contents, re.M), "the roost client was built but not packaged"
    assert "/var/lib/roost" not in contents  # created at install, never shipped (so never removed)
    assert f"Version: {VERSION}" in info
    depends = re.search(r"^ Depends: (.*)$", info, re.M).group(1)
    assert "libopenblas0 | libopenblas0-pthread" in depends and "libsystemd0" in depends and "libc6" in depends
    assert "swift" not in depends.lower()
    ctrl = tempfile.mkdtemp(prefix="roost-ctrl-")
    try:
        run("dpkg-deb", "--control", DEB, ctrl)
        assert Path(ctrl, "conffiles").read_text().split() == ["/etc/roost/roostd.toml"]
        for s in ("postinst", "prerm", "postrm"):
            text = Path(ctrl, s).read_text()
            assert "set -e" in text
            assert "rm -rf /var/lib/roost" not in text
    finally:
        shutil.rmtree(ctrl)
    print(f"\n{Path(DEB).name}: Depends: {depends}")


def test_lintian():
    if not shutil.which("lintian"):
        skip_or_fail("lintian is missing (apt-get install -y lintian)")
    r = run("lintian", "--tag-display-limit", "0", "--fail-on", "error", DEB, check=False)
    out = (r.stdout + r.stderr).strip()
    print("\nlintian:\n" + (out or "(nothing reported)"))
    errors = [l for l in out.splitlines() if l.startswith("E:")]
    assert r.returncode == 0 and not errors, out


def debian_root(dest: Path) -> None:
    """A minbase Debian root at dest, from the cached tarball or made by debootstrap."""
    if not CACHE.exists():
        if os.geteuid() != 0:
            skip_or_fail("debootstrap needs root")
        if not shutil.which("debootstrap"):
            skip_or_fail("debootstrap is missing (apt-get install -y debootstrap)")
        build = Path(tempfile.mkdtemp(prefix="roost-debootstrap-"))
        try:
            r = run("debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE, str(build), MIRROR,
                    check=False, timeout=1800)
            if r.returncode != 0:
                skip_or_fail(f"debootstrap could not build a {SUITE} root from {MIRROR}:\n{r.stderr[-2000:]}")
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            run("tar", "-C", str(build), "--numeric-owner", "-cf", str(CACHE) + ".part", ".")
            os.replace(str(CACHE) + ".part", CACHE)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    run("tar", "-C", str(dest), "--numeric-owner", "-xf", str(CACHE))


@pytest.fixture()
def chroot():
    if os.geteuid() != 0:
        skip_or_fail("installing into a chroot needs root")
    root = Path(tempfile.mkdtemp(prefix="roost-chroot-"))
    try:
        debian_root(root)
        # Services must not start inside the chroot.
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        # The Swift runtime reads its arguments from /proc/self/cmdline: a real system has /proc.
        run("mount", "-t", "proc", "proc", str(root / "proc"))
        try:
            yield root
        finally:
            run("umount", str(root / "proc"), check=False)
    finally:
        if not os.path.ismount(root / "proc"):
            shutil.rmtree(root, ignore_errors=True)


def test_install_into_clean_debian(chroot):
    def inside(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return run("chroot", str(chroot), *cmd, check=check, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})

    assert not inside("sh", "-c", "command -v swift", check=False).stdout.strip()
    shutil.copy(DEB, chroot / "tmp/roost.deb")
    out = inside("dpkg", "-i", "/tmp/roost.deb")
    print("\n" + out.stdout.strip())
    version = inside("roostd", "--version").stdout.strip()
    assert version == VERSION
    assert "not found" not in inside("ldd", "/usr/bin/roostd").stdout
    assert inside("getent", "passwd", "roost").stdout.startswith("roost:")
    assert inside("getent", "group", "roost").stdout.startswith("roost:")
    st = os.stat(chroot / "var/lib/roost/models")
    assert st.st_uid == int(inside("id", "-u", "roost").stdout)
    assert (chroot / "etc/systemd/system/sockets.target.wants/roostd.socket").is_symlink()
    # The packaged config parses and changes no default.
    config = inside("roostd", "serve", "--print-config").stdout
    assert 'memory-budget = "80%"' in config
    # The man page and the completions are in place.
    assert (chroot / "usr/share/man/man1/roostd.1.gz").exists()
    # Remove and purge keep models and sessions.
    (chroot / "var/lib/roost/models/keep.gguf").write_bytes(b"GGUF")
    inside("dpkg", "-r", "roost")
    assert (chroot / "var/lib/roost/models/keep.gguf").exists()
    assert (chroot / "etc/roost/roostd.toml").exists()  # a conffile stays until purge
    inside("dpkg", "-P", "roost")
    assert (chroot / "var/lib/roost/models/keep.gguf").exists()
    assert not (chroot / "etc/roost/roostd.toml").exists()
    assert not (chroot / "etc/systemd/system/sockets.target.wants/roostd.socket").exists()
    # Reinstalling over the kept user and data works.
    inside("dpkg", "-i", "/tmp/roost.deb")
    assert inside("roostd", "--version").stdout.strip() == VERSION
