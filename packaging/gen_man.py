#!/usr/bin/env python3
"""Writes a man page (roff) for an ArgumentParser command from its `--experimental-dump-help`
JSON on stdin: name, synopsis, description, options, and a section per subcommand."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys


def esc(text: str) -> str:
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in out.split("\n"))


def arg_names(a: dict) -> str:
    names = []
    for n in a.get("names", []):
        prefix = {"long": "--", "short": "-", "longWithSingleDash": "-"}.get(n.get("kind"), "--")
        names.append(f"\\fB{esc(prefix + n['name'])}\\fR")
    value = a.get("valueName")
    if a.get("kind") == "positional":
        return f"\\fI<{esc(value or 'value')}>\\fR"
    text = ", ".join(names)
    if a.get("kind") == "option" and value:
        text += f" \\fI<{esc(value)}>\\fR"
    return text


def options(cmd: dict, out: list[str]) -> None:
    for a in cmd.get("arguments", []):
        if not a.get("shouldDisplay", True):
            continue
        out.append(".TP")
        out.append(arg_names(a))
        help_text = a.get("abstract", "")
        if a.get("defaultValue") not in (None, ""):
            help_text += f" (default: {a['defaultValue']})"
        if a.get("discussion") and isinstance(a["discussion"], str):
            help_text += "\n" + a["discussion"]
        out.append(esc(help_text) if help_text else "")


def usage(cmd: dict, path: str) -> str:
    parts = []
    for a in cmd.get("arguments", []):
        if not a.get("shouldDisplay", True) or not a.get("names") and a.get("kind") != "positional":
            continue
        if a.get("kind") == "positional":
            parts.append(f"<{a.get('valueName', 'value')}>")
    return " ".join([path, "[options]", *parts])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", required=True)
    ap.add_argument("--section", default="1")
    args = ap.parse_args()
    info = json.load(sys.stdin)
    cmd = info["command"]
    name = cmd["commandName"]
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    date = (datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) if epoch
            else datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%d")
    out = [f'.TH {name.upper()} {args.section} "{date}" "{name} {esc(args.version)}" "Roost"',
           ".SH NAME", f"{esc(name)} \\- {esc(cmd.get('abstract', ''))}",
           ".SH SYNOPSIS"]
    subs = [s for s in cmd.get("subcommands", []) if s.get("shouldDisplay", True)]
    if subs:
        out.append(f"\\fB{esc(name)}\\fR [\\fIcommand\\fR] [\\fIoptions\\fR]")
    else:
        out.append(esc(usage(cmd, name)))
    if cmd.get("discussion"):
        out += [".SH DESCRIPTION", esc(cmd["discussion"])]
    if any(a.get("shouldDisplay", True) for a in cmd.get("arguments", [])):
        out.append(".SH OPTIONS")
        options(cmd, out)
    if subs:
        out.append(".SH COMMANDS")
        for s in subs:
            out.append(f".SS {esc(name)} {esc(s['commandName'])}")
            out.append(esc(s.get("abstract", "")))
            if s.get("discussion"):
                out += [".PP", esc(s["discussion"])]
            if s.get("arguments"):
                out.append(".PP")
                out.append(esc(usage(s, f"{name} {s['commandName']}")))
                options(s, out)
    out += [".SH FILES", ".TP", "/etc/roost/roostd.toml", "settings of \\fBroostd serve\\fR",
            ".TP", "/run/roost/roost.sock", "the socket of the system service",
            ".TP", "/var/lib/roost/models", "models of the system service",
            ".SH SEE ALSO", "systemctl(1), systemd.socket(5), /usr/share/doc/roost/SYSTEMD.md"]
    print("\n".join(out))


if __name__ == "__main__":
    main()
