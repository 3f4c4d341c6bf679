#!/usr/bin/env bash
# Builds dist/roost_<version>_amd64.deb from the release build in .build/release (made by
# `make deb`: swift build -c release --static-swift-stdlib). roostd, and the `roost` client
# when .build/release/roost exists; the systemd units, sysusers.d/tmpfiles.d, the default
# /etc/roost/roostd.toml (a conffile), man pages, shell completions and docs.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.build/release
VERSION=$(sed -n 's/.*static let string = "\(.*\)".*/\1/p' Sources/roostd/Version.swift)
[ -n "$VERSION" ] || { echo "build-deb: no version in Sources/roostd/Version.swift" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)
PKG=roost_${VERSION}_${ARCH}
STAGE=.build/deb/$PKG
OUT=dist/$PKG.deb
PY=${PYTHON:-python3}

[ -x "$BIN/roostd" ] || { echo "build-deb: $BIN/roostd is missing; run make deb" >&2; exit 1; }
rm -rf "$STAGE" && mkdir -p "$STAGE/DEBIAN" dist

install -d -m 0755 "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/usr/lib/sysusers.d" "$STAGE/usr/lib/tmpfiles.d" \
    "$STAGE/etc/roost" "$STAGE/usr/share/man/man1" "$STAGE/usr/share/doc/roost/examples" \
    "$STAGE/usr/share/bash-completion/completions" "$STAGE/usr/share/zsh/vendor-completions" \
    "$STAGE/usr/share/fish/vendor_completions.d"

BINARIES=(roostd)
[ -x "$BIN/roost" ] && BINARIES+=(roost)
for b in "${BINARIES[@]}"; do
    install -m 0755 "$BIN/$b" "$STAGE/usr/bin/$b"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$STAGE/usr/bin/$b"
    # Man page from the command's own help (ArgumentParser's --experimental-dump-help JSON).
    "$BIN/$b" --experimental-dump-help | "$PY" packaging/gen_man.py --version "$VERSION" \
        | gzip -9n > "$STAGE/usr/share/man/man1/$b.1.gz"
    "$BIN/$b" --generate-completion-script bash | sed '1{/^#!/d}' > "$STAGE/usr/share/bash-completion/completions/$b"
    "$BIN/$b" --generate-completion-script zsh > "$STAGE/usr/share/zsh/vendor-completions/_$b"
    "$BIN/$b" --generate-completion-script fish > "$STAGE/usr/share/fish/vendor_completions.d/$b.fish"
done
chmod 0644 "$STAGE"/usr/share/*/completions/* "$STAGE"/usr/share/zsh/vendor-completions/* \
    "$STAGE"/usr/share/fish/vendor_completions.d/* "$STAGE"/usr/share/man/man1/*

install -m 0644 systemd/roostd.service systemd/roostd.socket "$STAGE/lib/systemd/system/"
install -m 0644 systemd/roost.sysusers "$STAGE/usr/lib/sysusers.d/roost.conf"
install -m 0644 systemd/roost.tmpfiles "$STAGE/usr/lib/tmpfiles.d/roost.conf"
install -m 0644 packaging/roostd.toml "$STAGE/etc/roost/roostd.toml"
install -m 0644 systemd/roostd-tcp.conf "$STAGE/usr/share/doc/roost/examples/roostd-tcp.conf"
for d in SYSTEMD SERVER API; do install -m 0644 "docs/$d.md" "$STAGE/usr/share/doc/roost/$d.md"; done
install -m 0644 packaging/copyright "$STAGE/usr/share/doc/roost/copyright"
DATE=$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")
printf 'roost (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- Roost maintainers <maintainers@roost.invalid>  %s\n' \
    "$VERSION" "$VERSION" "$DATE" | gzip -9n > "$STAGE/usr/share/doc/roost/changelog.gz"
chmod 0644 "$STAGE/usr/share/doc/roost/changelog.gz"

# Runtime libraries: every shared object the binaries need, by the package that ships it on
# this system; OpenBLAS may come from either of its Debian builds.
declare -A deps=()
while read -r lib; do
    case "$lib" in
    *libopenblas*) deps["libopenblas0 | libopenblas0-pthread"]=1; continue ;;
    esac
    pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null || true)
    pkg=${pkg%%:*}
    [ -n "$pkg" ] || { echo "build-deb: no package ships $lib" >&2; exit 1; }
    case "$pkg" in
    libc6) deps["libc6 (>= $(dpkg-query -W -f='${Version}' libc6 | cut -d- -f1))"]=1 ;;
    *) deps["$pkg"]=1 ;;
    esac
done < <(for b in "${BINARIES[@]}"; do
    # Only the libraries the binary itself needs (DT_NEEDED); theirs are their packages' business.
    needed=$(readelf -d "$STAGE/usr/bin/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    ldd "$STAGE/usr/bin/$b" | awk -v needed="$needed" 'BEGIN { n = split(needed, a, "\n"); for (i = 1; i <= n; i++) want[a[i]] = 1 }
        /=>/ && $3 ~ /^\// && ($1 in want) {print $3}'
done | sort -u)
deps["libsystemd0"]=1
DEPENDS=$(printf '%s\n' "${!deps[@]}" | sort | paste -sd, | sed 's/,/, /g')
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)

cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: roost
Version: $VERSION
Architecture: $ARCH
Maintainer: Roost maintainers <maintainers@roost.invalid>
Installed-Size: $SIZE
Depends: $DEPENDS
Recommends: systemd
Section: misc
Priority: optional
Homepage: https://roost.invalid/
Description: on-device LLM inference daemon for RWKV and small MoE models
 roostd runs RWKV and small Mixture-of-Experts language models on the CPU,
 straight from GGUF files, and serves local applications over a Unix socket
 with an OpenAI- and Ollama-compatible HTTP API.
 .
 The package runs it as a hardened systemd service started by its socket
 (/run/roost/roost.sock); members of the group roost may use it. Models go
 in /var/lib/roost/models, settings in /etc/roost/roostd.toml.
CONTROL
echo /etc/roost/roostd.toml > "$STAGE/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "packaging/$s" "$STAGE/DEBIAN/$s"; done
(cd "$STAGE" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/conffiles" "$STAGE/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT" >/dev/null
echo "$OUT: $(du -h "$OUT" | cut -f1), Depends: $DEPENDS"
