#!/usr/bin/env python3
"""Test vectors for the RWKV World tokenizer, from the `rwkv` package's reference TRIE_TOKENIZER.

    python tools/gen_world_tokenizer_vectors.py --out DIR [--seed 20230424] [--size 1100000]

Writes into DIR (run at test time by Tests/TokenizersTests/WorldTokenizerOracleTests.swift; the
files are too big to commit and regenerate in about two seconds):

  tokens.json         {"tokens": [...], "token_types": [...]}: the GGUF `tokenizer.ggml.tokens`
                      strings and types, as llama.cpp's convert_hf_to_gguf.py writes them
  corpus.bin          >= --size bytes, deterministic from --seed: English prose, Chinese, Japanese,
                      Korean, Cyrillic, code, JSON, emoji, numbers, whitespace runs, random bytes
                      (invalid UTF-8 included: stray continuations, truncated and overlong
                      sequences, surrogates, F5..FF) and every one of the 256 single bytes
  corpus.ids          the reference ids of corpus.bin, little-endian int32
  corpus.replaced     corpus.bin.decode("utf-8", errors="replace") encoded as UTF-8
  valid.bin/.ids      a valid-UTF-8 corpus (the text segments only) and its ids

Exit status 77 when the `rwkv` package is missing (the Swift test then skips, or fails under CI).
"""
from __future__ import annotations

import argparse
import json
import random
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world_vocab_to_gguf_tokens import MissingRwkvPackage, gguf_tokens, load_reference_tokenizer  # noqa: E402

WORDS = (
    "the of and to in is was that for it with as his on be at by had are but from or have an they which "
    "one you were all her she there would their we him been has when who will no more if out so said what "
    "up its about than into them can only other new some could time these two may then do first any my now "
    "such like our over man me even most made after also did many before must through back years where much "
    "your way well down should because each just those people how too little state good very make world still "
    "own see men work long get here between both life being under never day same another know while last "
    "might us great old year off come since against go came right used take three tokenizer inference daemon "
    "memory budget expert router socket kernel quantization latency throughput bandwidth"
).split()
PUNCT = [".", ",", ";", ":", "!", "?", " -", "'s", "\u2019s", " (", ")", "\u2014", "\u2026", "\""]
CJK_COMMON = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么"
    "心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分"
    "将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重"
    "被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住"
    "员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制"
)
CN_PUNCT = "，。、；：？！“”（）《》…—"
JA = "これはテストです。日本語の文章をトークン化します。ひらがなとカタカナと漢字が混ざっています。"
KO = "안녕하세요. 이것은 토크나이저 테스트입니다. 한국어 문장도 포함합니다."
RU = "Съешь же ещё этих мягких французских булок, да выпей чаю. Привет, мир!"
ACCENTS = "Ça va très bien, naïve façade, Müller, Øresund, São Paulo, Łódź, Ελληνικά, עברית, العربية"
EMOJI = [
    "\U0001F600", "\U0001F602", "\U0001F44D", "\U0001F44D\U0001F3FD", "\u2764\ufe0f", "\U0001F525",
    "\U0001F680", "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466", "\U0001F1EF\U0001F1F5",
    "\U0001F3F3\ufe0f\u200d\U0001F308", "\u2705", "\U0001F914", "\U0001F40D", "\U0001F9EA", "\u2603",
]
CODE = [
    "def f(x):\n    return x * 2\n\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "    if not ok:\n        raise ValueError(f\"bad value: {v!r}\")\n",
    "let x: [Int32] = try tokenizer.encode(bytes: Array(text.utf8))\n",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;\n",
    "<div class=\"box\"><a href=\"https://example.com/?q=1&r=2\">link</a></div>\n",
    "    }\n  ]\n}\n",
    "x = [1, 2, 3]; y = {'a': 1, \"b\": [None, True, False]}\n",
    "\t\t\treturn nil\n",
]
INVALID = [
    b"\x80", b"\xbf", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80", b"\xf5\x80", b"\xff", b"\xfe\xff", b"\xe4\xb8", b"\xf0\x9f\x98",
    b"\xc3", b"\xe2\x82", b"\xf0\x9f", b"\x80\x80\x80\x80",
]


def prose(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(1, 6)):
        n = rng.randint(4, 24)
        words = [rng.choice(WORDS) for _ in range(n)]
        words[0] = words[0].capitalize()
        for i in range(1, n):
            if rng.random() < 0.08:
                words[i] = words[i] + rng.choice(PUNCT)
            if rng.random() < 0.05:
                words[i] = words[i].upper()
        out.append(" ".join(words) + rng.choice([".", ".", "!", "?", ":", "..."]))
    return " ".join(out) + rng.choice(["\n", "\n\n", " ", "\r\n"])


def chinese(rng: random.Random) -> str:
    s = []
    for _ in range(rng.randint(8, 60)):
        s.append(rng.choice(CJK_COMMON))
        if rng.random() < 0.1:
            s.append(rng.choice(CN_PUNCT))
    if rng.random() < 0.1:
        s.append(chr(rng.randint(0x4E00, 0x9FFF)))  # rarer characters
    if rng.random() < 0.05:
        s.append(chr(rng.randint(0x20000, 0x2A6DF)))  # CJK extension B: 4-byte UTF-8
    return "".join(s) + rng.choice(["。", "\n", "，"])


def other_scripts(rng: random.Random) -> str:
    s = rng.choice([JA, KO, RU, ACCENTS])
    a = rng.randrange(len(s))
    return s[a:a + rng.randint(5, 60)] + rng.choice([" ", "\n"])


def code(rng: random.Random) -> str:
    return "".join(rng.choice(CODE) for _ in range(rng.randint(1, 4)))


def emoji(rng: random.Random) -> str:
    return "".join(rng.choice(EMOJI) + rng.choice(["", " ", "", "!"]) for _ in range(rng.randint(1, 8)))


def numbers(rng: random.Random) -> str:
    return rng.choice([
        str(rng.randint(0, 10**rng.randint(1, 12))),
        f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}",
        f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        f"0x{rng.getrandbits(32):08x}",
    ]) + rng.choice([" ", ", ", "\n"])


def whitespace(rng: random.Random) -> str:
    return "".join(rng.choice([" ", "  ", "\t", "\n", "\r\n", "\u3000", "\u00a0"]) * rng.randint(1, 20)
                   for _ in range(rng.randint(1, 4)))


TEXT_KINDS = [(prose, 30), (chinese, 20), (other_scripts, 8), (code, 14), (emoji, 6), (numbers, 6),
              (whitespace, 6)]


def text_segment(rng: random.Random) -> str:
    fns, weights = zip(*TEXT_KINDS)
    return rng.choices(fns, weights)[0](rng)


def byte_segment(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.4:
        return rng.choice(INVALID)
    if r < 0.7:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 16)))
    if r < 0.85:
        # a valid character cut short, or with a stray byte inside
        c = chr(rng.choice([rng.randint(0x80, 0x7FF), rng.randint(0x800, 0xFFFF) & ~0x800 | 0x1000,
                            rng.randint(0x10000, 0x10FFFF)])).encode("utf-8", "surrogatepass")
        return c[: rng.randint(1, len(c) - 1)] if len(c) > 1 else c
    return bytes([rng.randrange(256)])


def corpus(rng: random.Random, size: int, with_bytes: bool) -> bytes:
    parts: list[bytes] = []
    if with_bytes:
        every = list(range(256))
        parts.append(bytes(every))
        rng.shuffle(every)
        parts.append(bytes(every))
        parts.append(b"".join(b"a" + bytes([i]) + b" " for i in range(256)))
    total = sum(map(len, parts))
    while total < size:
        if with_bytes and rng.random() < 0.12:
            p = byte_segment(rng)
        else:
            p = text_segment(rng).encode("utf-8")
        parts.append(p)
        total += len(p)
    return b"".join(parts)


def write_ids(path: Path, ids: list[int]) -> None:
    path.write_bytes(struct.pack(f"<{len(ids)}i", *ids))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20230424)
    ap.add_argument("--size", type=int, default=1_100_000, help="minimum corpus size in bytes")
    args = ap.parse_args()
    try:
        tok = load_reference_tokenizer()
        texts, types, raw = gguf_tokens()
    except MissingRwkvPackage as e:
        print(f"error: {e}", file=sys.stderr)
        return 77

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokens.json").write_text(json.dumps({"tokens": texts, "token_types": types}))

    rng = random.Random(args.seed)
    mixed = corpus(rng, args.size, with_bytes=True)
    valid = corpus(rng, args.size // 4, with_bytes=False)
    valid.decode("utf-8")  # must be valid

    for name, data in (("corpus", mixed), ("valid", valid)):
        ids = tok.encodeBytes(data)
        assert tok.decodeBytes(ids) == data
        assert all(raw[i] == tok.idx2token[i] for i in set(ids))
        (out / f"{name}.bin").write_bytes(data)
        write_ids(out / f"{name}.ids", ids)
        print(f"{name}: {len(data)} bytes, {len(ids)} tokens")
    (out / "corpus.replaced").write_bytes(mixed.decode("utf-8", errors="replace").encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
