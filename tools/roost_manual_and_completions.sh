#!/bin/sh
# Man pages and shell completions for roost and roostd, from their ArgumentParser definitions.
# Usage: tools/roost_manual_and_completions.sh [OUTDIR] (default: .build/share)
# Uses the debug build (run `swift build` first); works offline.
set -eu
cd "$(dirname "$0")/.."
out=${1:-.build/share}
mkdir -p "$out/man/man1" "$out/bash-completion/completions" "$out/zsh/site-functions" "$out/fish/vendor_completions.d"
# The plugin builds every product (debug reuses `swift build`; its default, release, rebuilds everything).
swift package plugin generate-manual --configuration debug
cp .build/plugins/GenerateManual/outputs/roost/roost.1 .build/plugins/GenerateManual/outputs/roostd/roostd.1 "$out/man/man1/"
for tool in roost roostd; do
    .build/debug/$tool --generate-completion-script bash > "$out/bash-completion/completions/$tool"
    .build/debug/$tool --generate-completion-script zsh > "$out/zsh/site-functions/_$tool"
    .build/debug/$tool --generate-completion-script fish > "$out/fish/vendor_completions.d/$tool.fish"
done
echo "man pages and completions in $out"
