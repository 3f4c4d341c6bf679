"""Chat templates: Roost's Jinja subset against Python's jinja2 on real templates.

The templates are llama.cpp's `models/templates/*.jinja` from llama-cpp-python's sdist
(tools/chat_template_sources.py downloads and verifies it). Each template renders a set of
conversations with jinja2 configured as Hugging Face transformers configures it, and through
`roostd template --cases` (one process for all cases); outputs must be byte-identical, and a
case jinja2 refuses (e.g. raise_exception on an unsupported role order) must fail in Roost too.

Run by `make test-python` with ROOSTD set to the debug roostd binary. Skipped when PyPI is
unreachable, except under CI=true.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

jinja2 = pytest.importorskip("jinja2")
from jinja2.ext import Extension, loopcontrols  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import chat_template_sources as sources  # noqa: E402

ROOSTD = os.environ.get("ROOSTD")
CI = os.environ.get("CI") == "true"
pytestmark = pytest.mark.skipif(not ROOSTD, reason="ROOSTD (path to roostd) is not set; run via make test-python")

# Templates whose rendering Roost does not match yet, with the reason. Roost must refuse them
# with an error (never render something else); the test checks that too.
EXPECTED_UNSUPPORTED: dict[str, str] = {}

try:
    TEMPLATES = sources.template_paths()
    UNAVAILABLE = None
except sources.SourceUnavailable as e:  # network
    TEMPLATES = []
    UNAVAILABLE = str(e)


# ---- jinja2 configured like transformers' _compile_jinja_template --------------------------

class AssistantTracker(Extension):
    """transformers' {% generation %} tag; it renders its body unchanged."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env() -> ImmutableSandboxedEnvironment:
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# ---- conversations ------------------------------------------------------------------------

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS: dict[str, list[dict]] = {
    "user": [{"role": "user", "content": "Hello!"}],
    "system_user": [SYSTEM, {"role": "user", "content": "What is the capital of France?"}],
    "multi_turn": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "system_multi_turn": [
        SYSTEM,
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ],
    "reasoning": [
        {"role": "user", "content": "Is 17 prime?"},
        {"role": "assistant", "content": "Yes, 17 is prime.",
         "reasoning_content": "17 is not divisible by 2, 3 or 5, and 5*5 > 17."},
        {"role": "user", "content": "And 21?"},
    ],
    "think_in_content": [
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "<think>\nRayleigh scattering.\n</think>\n\nBecause of Rayleigh scattering."},
        {"role": "user", "content": "Thanks"},
    ],
    "unicode": [
        {"role": "system", "content": "Réponds en français. 日本語も話せます。"},
        {"role": "user", "content": "Ünïcödé ✓ 🦙🐦 e\u0301 — «quotes» ‘single’ \u2028 end"},
        {"role": "assistant", "content": "D'accord 👍 Привет"},
        {"role": "user", "content": "😀👨‍👩‍👧"},
    ],
    "tricky": [
        {"role": "system", "content": "  Leading and trailing spaces  \n"},
        {"role": "user", "content": "Line 1\nLine 2\n\nPara \"two\" with 'quotes' and \\backslash\\ and\ttab"},
        {"role": "assistant", "content": "Braces {{ not_a_var }} {% not_a_tag %} {# no #} and {\"json\": [1, 2]}"},
        {"role": "user", "content": "</s><|im_end|> <|eot_id|> [INST] end"},
    ],
    "empty_content": [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "?"},
    ],
    "assistant_last": [
        {"role": "user", "content": "Continue this: once upon"},
        {"role": "assistant", "content": "a time"},
    ],
    "user_user": [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
    ],
}
# Conversations with tool calls go to the template as raw dicts (roostd's "raw_messages").
TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}]
RAW_CONVERSATIONS: dict[str, list[dict]] = {
    "tool_call": [
        SYSTEM,
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{\"temp\": 21}"},
        {"role": "assistant", "content": "It is 21 °C in Paris."},
        {"role": "user", "content": "Thanks!"},
    ],
}
TOKENS = [("<s>", "</s>"), ("<|begin_of_text|>", "<|eot_id|>"), ("", "")]
EXTRAS = [{}, {"enable_thinking": False}, {"tools": TOOLS}]


def build_cases(template: Path) -> list[dict]:
    cases = []
    for i, (name, messages) in enumerate(CONVERSATIONS.items()):
        for agp in (True, False):
            bos, eos = TOKENS[i % len(TOKENS)]
            extras = EXTRAS if name in ("system_user", "reasoning") else [{}]
            for extra in extras:
                cases.append({"id": f"{name}/agp={agp}/extra={list(extra)}", "template_file": str(template),
                              "messages": messages, "add_generation_prompt": agp,
                              "bos": bos, "eos": eos, "extra": extra})
    for name, messages in RAW_CONVERSATIONS.items():
        for agp in (True, False):
            for extra in ({}, {"tools": TOOLS}):
                cases.append({"id": f"{name}/agp={agp}/extra={list(extra)}", "template_file": str(template),
                              "messages": messages, "add_generation_prompt": agp, "raw_messages": True,
                              "bos": "<s>", "eos": "</s>", "extra": extra})
    return cases


def compile_template(env, source: str):
    """The compiled template, or the exception jinja2 raised compiling it."""
    try:
        return env.from_string(source)
    except Exception as e:  # noqa: BLE001
        return e


def jinja_render(compiled, case: dict) -> tuple[str | None, str | None]:
    if isinstance(compiled, Exception):
        return None, f"{type(compiled).__name__}: {compiled}"
    try:
        context = {"messages": case["messages"], "tools": None, "documents": None,
                   "add_generation_prompt": case["add_generation_prompt"],
                   "bos_token": case["bos"], "eos_token": case["eos"]}
        context.update(case["extra"])
        out = compiled.render(**context)
        return out, None
    except Exception as e:  # noqa: BLE001 - every jinja2 failure counts as "refused"
        return None, f"{type(e).__name__}: {e}"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, list[tuple[dict, tuple, dict]]]:
    env = make_env()
    all_cases = []
    expected = []
    for t in TEMPLATES:
        compiled = compile_template(env, t.read_text(encoding="utf-8"))
        for case in build_cases(t):
            all_cases.append(case)
            expected.append(jinja_render(compiled, case))
    path = tmp_path_factory.mktemp("templates") / "cases.json"
    path.write_text(json.dumps(all_cases, ensure_ascii=False), encoding="utf-8")
    proc = subprocess.run([ROOSTD, "template", "--cases", str(path)], capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    got = json.loads(proc.stdout.decode("utf-8"))
    assert len(got) == len(all_cases)
    by_template: dict[str, list] = {}
    for case, exp, g in zip(all_cases, expected, got):
        by_template.setdefault(Path(case["template_file"]).name, []).append((case, exp, g))
    return by_template


def test_templates_available():
    if UNAVAILABLE is not None:
        if CI:
            pytest.fail(f"PyPI unreachable under CI: {UNAVAILABLE}")
        pytest.skip(f"PyPI unreachable: {UNAVAILABLE}")
    assert len(TEMPLATES) >= 50


@pytest.mark.parametrize("name", [t.name for t in TEMPLATES])
def test_template_matches_jinja2(name, results):
    cases = results[name]
    if name in EXPECTED_UNSUPPORTED:
        for case, (out, err), got in cases:
            if "prompt" in got:
                assert got["prompt"] == out, f"{name} [{case['id']}] is listed as unsupported but rendered something else"
        pytest.xfail(EXPECTED_UNSUPPORTED[name])
    failures = []
    for case, (out, err), got in cases:
        if err is not None:
            if "error" not in got:
                failures.append(f"[{case['id']}] jinja2 failed ({err}) but roostd rendered {got['prompt'][:200]!r}")
        elif "error" in got:
            failures.append(f"[{case['id']}] roostd failed: {got['error']}")
        elif got["prompt"] != out:
            a, b = got["prompt"], out
            i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
            failures.append(f"[{case['id']}] differs at char {i}: roostd {a[max(0, i - 40):i + 60]!r} "
                            f"jinja2 {b[max(0, i - 40):i + 60]!r}")
    assert not failures, f"{name}: {len(failures)}/{len(cases)} cases differ\n" + "\n".join(failures[:5])


def test_rwkv_world_fallback(tmp_path):
    """Without a template, roostd template uses the RWKV World convention."""
    msgs = tmp_path / "m.json"
    msgs.write_text(json.dumps([SYSTEM, {"role": "user", "content": " Hi\n\n\nthere "}]), encoding="utf-8")
    out = subprocess.run([ROOSTD, "template", "--messages", str(msgs), "--add-generation-prompt"],
                         capture_output=True, check=True).stdout.decode("utf-8")
    assert out == "System: You are a helpful assistant.\n\nUser: Hi\nthere\n\nAssistant:"
    js = subprocess.run([ROOSTD, "template", "--messages", str(msgs), "--json"],
                        capture_output=True, check=True).stdout.decode("utf-8")
    assert json.loads(js) == {"prompt": "System: You are a helpful assistant.\n\nUser: Hi\nthere\n\n"}
