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
    "tool_calls_string_args": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "call_b", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\", \"unit\": \"celsius\"}"}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "18"},
        {"role": "tool", "tool_call_id": "call_b", "content": "24"},
    ],
    "content_parts": [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "text", "text": " this."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
        {"role": "user", "content": "More?"},
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


# ---- small templates, one feature each ----------------------------------------------------

SNIPPET_CONTEXT = {
    "d": {"b": 2, "a": 1, "C": [1, 2], "s": "x<y>&'\""},
    "l": [3, 1, 2, 1],
    "words": ["banana", "Apple", "cherry", "apple"],
    "objs": [{"name": "b", "type": "function", "v": 2}, {"name": "a", "type": "code", "v": 1},
             {"name": "c", "type": "function"}],
    "s": "  Hello, World!  ",
    "u": "Ünïcödé 🦙 e\u0301",
    "n": 7,
    "f": 2.5,
    "big": 12345678901234,
    "t": True,
    "nothing": None,
    "empty": "",
    "nested": {"a": {"b": {"c": "deep"}}},
    "multiline": "line one\nline two\n\nline four",
}
SNIPPETS = [
    # whitespace control, trim_blocks, lstrip_blocks
    "a\n  {% if true %}\n  b\n  {% endif %}\nc",
    "a  {%- if true -%}  b  {%- endif -%}  c",
    "{{ 'x' }}\n{{ 'y' }}\n",
    "  {{- 'x' -}}  \n  {# comment #}\n  y {#- c -#} z",
    "{% for i in l %}\n  {{ i }}\n{% endfor %}",
    "{%+ if true %}x{% endif +%}\ny",
    "{% raw_text = 1 %}" if False else "{{ '{{' }} {{ '}}' }} {{ '{%' }}",
    "a\r\nb\r\n{% if true %}\r\nc{% endif %}\r\n",
    # literals and operators
    "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }}",
    "{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e3 }} {{ 1.0 }} {{ 10 / 4 }} {{ 1e16 }} {{ 1e-5 }} {{ 123456789.125 }}",
    "{{ 'a' ~ 1 ~ none ~ true ~ [1, 'b'] ~ {'k': 'v'} }}",
    "{{ 'abc' + 'def' }} {{ [1] + [2, 3] }} {{ 'ab' * 3 }} {{ [0] * 2 }}",
    "{{ true and 'x' }} {{ false or 'y' }} {{ not none }} {{ '' or 0 or 'z' }} {{ 0 and 1 }}",
    "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }}",
    "{{ 'ell' in 'hello' }} {{ 2 in l }} {{ 'a' in d }} {{ 'z' not in d }} {{ 5 not in l }}",
    "{{ 'yes' if t else 'no' }} {{ 'yes' if nothing else 'no' }} [{{ 'x' if false }}]",
    "{{ \"it's\" }} {{ 'say \"hi\"' }} {{ 'tab\\tnew\\nline \\\\ \\x41 \\u00e9' }} {{ 'adj' 'acent' }}",
    "{{ [1, 2, 3][1:] }} {{ 'hello'[::-1] }} {{ l[-1] }} {{ l[::2] }} {{ 'abc'[5:] }} {{ u[0:3] }} {{ u[-1] }}",
    "{{ d.b }} {{ d['a'] }} {{ d.C[1] }} {{ nested.a.b.c }} {{ objs[0].name }} {{ l.0 }}",
    "{{ (1, 2) }} {{ (1,) }} {{ [] }} {{ {} }} {{ {'a': [1, {'b': none}]} }} {{ none }} {{ true }}",
    "{{ d }} {{ words }} {{ [1.5, 'x\\'y', \"q\\\"\"] }}",
    # variables and scoping
    "{% set x = 1 %}{% for i in l %}{% set x = x + i %}{{ x }},{% endfor %}{{ x }}",
    "{% set ns = namespace(total=0, items=[]) %}{% for i in l %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = (3, 4) %}{{ c[0] }}",
    "{% set block %}inner {{ n }}{% endset %}[{{ block }}]{% set t2 | upper %}up{% endset %}{{ t2 }}",
    "{% if true %}{% set inside = 'set' %}{% endif %}{{ inside }}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C') }}",
    "{% macro outer() %}{{ n }}{% endmacro %}{% set n = 99 %}{{ outer() }}",
    "{% macro rec(k) %}{% if k > 0 %}{{ k }}{{ rec(k - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}",
    # loops
    "{% for i in l %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }} {% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
    "{% for k in d %}{{ k }}{% endfor %} {% for c in 'abc' %}{{ c }}-{% endfor %}",
    "{% for i in l if i > 1 %}{{ i }}{{ loop.index }}{{ loop.length }};{% endfor %}",
    "{% for i in [] %}x{% else %}empty{% endfor %}",
    "{% for i in l %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}|{% for i in l %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}",
    "{% for i in l %}{{ loop.cycle('a', 'b') }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}",
    "{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}",
    "{% for x in nothing %}x{% endfor %}",
    "{% for x in undefined_thing %}x{% else %}none{% endfor %}",
    "{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}{{ range(3) | list }}",
    # filters
    "{{ s | trim }}|{{ s | length }}|{{ l | length }}|{{ d | count }}|{{ u | length }}|{{ s | upper }}|{{ s | lower }}",
    "{{ 'hello world-foo(bar)' | title }} {{ 'hELLO' | capitalize }} {{ \"they're bill's\" | title }}",
    "{{ undefined_thing | default('dflt') }} {{ none | default('x') }} {{ '' | default('e', true) }} {{ 0 | d('z', boolean=true) }}",
    "{{ d | tojson }} {{ l | tojson }} {{ 'é\"\\n' | tojson }} {{ none | tojson }} {{ f | tojson }} {{ u | tojson }}",
    "{{ d | tojson(indent=2) }}\n{{ objs | tojson(indent=4) }}\n{{ d | tojson(sort_keys=true) }}\n{{ d | tojson(separators=(',', ':')) }}",
    "{{ [] | tojson(indent=2) }} {{ {} | tojson(indent=2) }} {{ u | tojson(ensure_ascii=true) }}",
    "{{ l | join(', ') }} {{ words | join }} {{ objs | join('|', attribute='name') }}",
    "{{ 'a-b-c' | replace('-', '+') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'abc' | replace('', '.') }}",
    "{{ l | first }} {{ l | last }} {{ 'xyz' | first }} {{ [] | first }} {{ l | list }} {{ 'ab' | list }} {{ d | list }}",
    "{{ 42 | string }} {{ none | string }} {{ l | string }} {{ '3' | int + 1 }} {{ '3.7' | int }} {{ 'x' | int }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 7 | float }}",
    "{{ d | items | list }} {{ d | dictsort }} {{ d | dictsort(reverse=true) }}",
    "{{ objs | selectattr('type', 'equalto', 'function') | list }} {{ objs | rejectattr('type', 'eq', 'function') | map(attribute='name') | list }}",
    "{{ objs | selectattr('v') | list | length }} {{ objs | map(attribute='v', default=0) | list }} {{ l | select('odd') | list }} {{ l | reject('even') | list }}",
    "{{ words | map('upper') | list }} {{ l | map('string') | join }} {{ objs | map(attribute='name') | join(',') }}",
    "{{ l | unique | list }} {{ words | unique | list }} {{ l | reverse | list }} {{ 'abc' | reverse }} {{ l | sort }} {{ words | sort }} {{ words | sort(case_sensitive=true) }} {{ l | sort(reverse=true) }}",
    "{{ objs | sort(attribute='name') | map(attribute='name') | join }} {{ l | min }} {{ l | max }} {{ words | min }} {{ l | sum }}",
    "{{ 2.567 | round }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ -3 | abs }} {{ -2.5 | abs }} {{ 3.14159 | round(1, 'floor') }}",
    "{{ multiline | indent }}|{{ multiline | indent(2, true) }}|{{ multiline | indent('> ', first=true, blank=true) }}",
    "{{ d.s | e }} {{ d.s | safe }} {{ 'a' | safe + d.s }} {{ d.s + 'b' | safe }} {{ d.s ~ 'c' | safe }}",
    "{{ 'one two  three' | wordcount }} {{ d | attr('b') }}",
    "{% filter upper %}shout {{ n }}{% endfilter %}",
    # tests
    "{{ x is defined }} {{ n is defined }} {{ x is undefined }} {{ nothing is none }} {{ n is not none }}",
    "{{ s is string }} {{ n is number }} {{ f is number }} {{ t is number }} {{ n is integer }} {{ f is float }} {{ t is boolean }} {{ n is boolean }}",
    "{{ d is mapping }} {{ l is mapping }} {{ l is iterable }} {{ s is iterable }} {{ n is iterable }} {{ l is sequence }} {{ d is sequence }} {{ x is iterable }}",
    "{{ t is true }} {{ t is false }} {{ 1 is true }} {{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} {{ n is equalto 7 }} {{ n is eq 8 }} {{ 2 is in l }}",
    "{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ nothing is sameas none }} {{ s is not string }}",
    # methods
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}|{{ s.upper() }}|{{ s.lower() }}|{{ 'hello world'.title() }}|{{ 'hello'.capitalize() }}",
    "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ multiline.splitlines() }}",
    "{{ s.startswith('  He') }} {{ s.endswith('!  ') }} {{ 'abc'.startswith(('x', 'a')) }} {{ 'hello'.find('l') }} {{ 'hello'.find('z') }} {{ 'hello'.rfind('l') }} {{ 'hello'.count('l') }}",
    "{{ 'a-b'.replace('-', '_') }} {{ '{}+{}={}'.format(1, 2, 3) }} {{ '{0}{name}'.format('x', name='y') }} {{ '-'.join(words) }} {{ 'ab'.upper().lower() }}",
    "{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}",
    "{{ d.keys() }} {{ d.items() | length }} {{ l.index(2) }} {{ l.count(1) }}",
    "{{ u.upper() }} {{ u.lower() }} {{ u | title }} {{ '<think>\\nabc\\n</think>\\n\\nanswer'.split('</think>')[-1].lstrip('\\n') }}",
    # errors and undefined
    "{{ x }}|{{ x ~ 'a' }}|{{ x | length }}|{{ x | string }}|{% if x %}t{% else %}f{% endif %}|{{ x == none }}|{{ x | trim }}",
    "{{ x.y }}",
    "{{ d.nope }}|{{ d.nope is defined }}|{{ l[10] is defined }}|{{ none.foo is defined }}",
    "{{ x + 1 }}",
    "{{ x() }}",
    "{{ raise_exception('custom failure') }}",
    "{{ 1 / 0 }}",
    "{{ 'a' + 1 }}",
    "{{ none | length }}",
    "{{ [1].append(2) }}",
    "{{ l | map(attribute='x') | tojson }}",
    "{{ 1 < 'a' }}",
    "{% set z = undefined_thing.attr %}",
    "{{ nothing[0] }}|{{ n[0] }}|{{ 'abc'[10] }}",
    "{% for a, b in [[1, 2], [3]] %}{{ a }}{% endfor %}",
    "{{ d | tojson }}{{ x | tojson }}",
    "{{ strftime_now('%Y') | length }}",
    "{{ 'a' | frobnicate }}",
    "{% if false %}{{ 'a' | frobnicate }}{% endif %}ok {{ 'x' if true else 'y' | frobnicate }}",
    "{% for i in [1] %}{% if false %}{{ i | frobnicate }}{% endif %}{% endfor %}ok",
    "{% if n %}{{ n is frobnicated }}{% endif %}",
    "{% if n: %}a{% elif t: %}b{% else: %}c{% endif %}{% for i in l: %}{{ i }}{% else: %}e{% endfor %}",
    "{% set ns = namespace(a=0) %}{% set ns.a, b = 1, 2 %}{{ ns.a }}{{ b }}{% for (x, y) in [(1, 2)] %}{{ x }}{{ y }}{% endfor %}",
    "{% for a, (b, c) in [(1, (2, 3))] %}{{ a }}{{ b }}{{ c }}{% endfor %}",
    "{{ n is defined(1) }}",
    "{% macro m() %}x{% endmacro m %}",
    "{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 00 }}",
    "{{ 04 }}",
    "{{+ 'plus' }} {%+ if true %}x{% endif %}",
    "{% set a, = [1] %}{{ a }}",
    "text then {#",
    "{{ 'on> if  t=wo  three_4' | wordcount }} {{ [x, (x,), {'k': x}] }} {{ d[] }}|{{ d[1, 2] }} {{ 3 is lower }} {{ 'A1' is upper }}",
    "{{ objs | sort(attribute='missing') | map(attribute='name') | join }} {{ [x, y] | sort }}",
    "{{ '{}{0}'.format(1, 2) }}",
    "{{ s.lstrip(1) }}",
    "{% if t if n else f %}x{% endif %}",
    "{% if (t if n else f) %}x{% endif %}",
    "{{ n[::-1] }}",
    "{{ x | attr('b') }}",
    "{{ 'ab'.upper(1) }}",
    "{{ [1, x] | sort }}",
    "{{ d | join(atribute='x') }}",
    "{{ 2.5 | round(1, 'up') }}",
    "{{ strftime_now('%d %%f') | length }}",
    "{{ messages | length }} {{ messages[0].role }} {{ messages[-1]['content'] }} {{ add_generation_prompt }} [{{ bos_token }}] {{ tools }}",
]


@pytest.fixture(scope="module")
def snippet_results(tmp_path_factory):
    env = make_env()
    messages = CONVERSATIONS["system_multi_turn"]
    cases, expected = [], []
    for src in SNIPPETS:
        case = {"template": src, "messages": messages, "add_generation_prompt": True, "bos": "<s>", "eos": "</s>",
                "extra": SNIPPET_CONTEXT}
        cases.append(case)
        expected.append(jinja_render(compile_template(env, src), case))
    path = tmp_path_factory.mktemp("snippets") / "cases.json"
    path.write_text(json.dumps(cases, ensure_ascii=False), encoding="utf-8")
    proc = subprocess.run([ROOSTD, "template", "--cases", str(path)], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    got = json.loads(proc.stdout.decode("utf-8"))
    return list(zip(SNIPPETS, expected, got))


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_snippet_matches_jinja2(index, snippet_results):
    src, (out, err), got = snippet_results[index]
    if err is not None:
        assert "error" in got, f"{src!r}: jinja2 failed ({err}) but roostd rendered {got.get('prompt')!r}"
    else:
        assert "error" not in got, f"{src!r}: roostd failed: {got['error']}"
        assert got["prompt"] == out, f"{src!r}"


def test_template_from_gguf_metadata(tmp_path):
    """With a model, roostd template reads tokenizer.chat_template and the BOS/EOS token strings."""
    gguf = pytest.importorskip("gguf")
    import numpy as np

    path = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["<unk>", "<|bos|>", "<|eos|>", "a"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template("{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}"
                        "{% if add_generation_prompt %}[assistant]{% endif %}")
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    msgs = tmp_path / "m.json"
    msgs.write_text(json.dumps([{"role": "user", "content": "héllo"}]), encoding="utf-8")
    out = subprocess.run([ROOSTD, "template", str(path), "--messages", str(msgs), "--add-generation-prompt"],
                         capture_output=True, check=True).stdout.decode("utf-8")
    assert out == "<|bos|>[user] héllo<|eos|>[assistant]"
    out = subprocess.run([ROOSTD, "template", str(path), "--messages", str(msgs), "--bos", "B", "--eos", "E"],
                         capture_output=True, check=True).stdout.decode("utf-8")
    assert out == "B[user] hélloE"
    bad = tmp_path / "bad.jinja"
    bad.write_text("{% if x %}never closed", encoding="utf-8")
    proc = subprocess.run([ROOSTD, "template", "--template-file", str(bad), "--messages", str(msgs)], capture_output=True)
    assert proc.returncode != 0
    assert b"1:4" in proc.stderr and b"'endif'" in proc.stderr
