#!/usr/bin/env python3
"""Byte-level BPE and SentencePiece tokenizer fixtures, with the `tokenizers` and `sentencepiece`
packages as the oracle.

    python tools/gen_bpe_tokenizer_fixtures.py --fixtures [DIR]   # train, write the committed files
    python tools/gen_bpe_tokenizer_fixtures.py --vectors OUT [--fixtures-dir DIR] [--size N]

--fixtures (default DIR: Tests/Fixtures/tokenizers) trains, on a deterministic mixed corpus, one
small byte-level BPE tokenizer per pre-tokenizer (configured as the real models' tokenizer.json
files are: Split(regex, "isolated") + ByteLevel(use_regex=False) for Llama 3 / Qwen2 / DeepSeek /
llama.cpp's default list, ByteLevel(use_regex=True) for GPT-2 / OLMo, Digits + ByteLevel for
StarCoder) with a few added special tokens, and two SentencePiece BPE models (with and without
byte fallback). Each is written as
  NAME.gguf            the tokenizer-only GGUF, with the tokenizer.ggml.* keys laid out as
                       llama.cpp's convert_hf_to_gguf.py writes them (needs gguf-py)
  NAME.tokenizer.json  (BPE) / NAME.model (SentencePiece): the oracle's own file
These are committed (a few hundred KB in all); regenerate only when this script changes.

--vectors (run at test time by Tests/TokenizersTests/BPETokenizerOracleTests.swift) writes into OUT
  corpus.bin / corpus.lens   >= --size bytes of documents (UTF-8, back to back) and their lengths
  NAME.ids / NAME.counts     the oracle's ids per document with special tokens parsed
                             (int32 little-endian), and the number of ids of each document
  NAME.plain.ids / .counts   the same with special tokens not parsed (control-token text as text)
It needs only `tokenizers` and `sentencepiece`; exit status 77 when one is missing (the Swift test
then skips, or fails under CI=true).
"""
from __future__ import annotations

import argparse
import io
import json
import random
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "Fixtures" / "tokenizers"

# ---- corpus --------------------------------------------------------------------------------

WORDS = (
    "the of and to in is was that for it with as his on be at by had are but from or have an they which "
    "one you were all her she there would their we him been has when who will no more if out so said what "
    "up its about than into them can only other new some could time these two may then do first any my now "
    "such like our over man me even most made after also did many before must through back years where much "
    "your way well down should because each just those people how too little state good very make world still "
    "tokenizer inference daemon memory budget expert router socket kernel quantization latency throughput"
).split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Re", "'rE", "'VE", "'vE", "'M",
                "'LL", "'Ll", "'lL", "'D", "'x", "''s", "'", "'\u2019s", "\u2019s", "'1", "' s"]
CJK = ("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然"
       "没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回")
JA = "これはテストです。日本語の文章をトークン化します。ひらがなとカタカナと漢字が混ざっています。ｶﾀｶﾅ半角も。"
KO = "안녕하세요. 이것은 토크나이저 테스트입니다. 한국어 문장도 포함합니다."
RU = "Съешь же ещё этих мягких французских булок, да выпей чаю. Привет, мир! ЁЛКИ-ПАЛКИ"
AR = "مرحبا بالعالم، هذا اختبار للمرمز. العربية لغة جميلة؟ ١٢٣٤٥٦٧٨٩٠"
HI = "नमस्ते दुनिया, यह एक परीक्षण है। हिंदी में संयुक्त अक्षर: क्ष त्र ज्ञ श्र। १२३४५"
GREEK = "Ελληνικά: Καλημέρα κόσμε! ΑΒΓΔ αβγδ ῾Ομηρος ᾅδης"
ACCENTS = ["Ça va très bien", "naïve façade", "Müller", "Øresund", "São Paulo", "Łódź", "Ærøskøbing", "crème brûlée",
           "e\u0301te\u0301", "a\u0308rger", "n\u0303", "Z\u0351\u0352\u0353algo", "\u0301lead mark", "x\u20dd"]
EMOJI = ["\U0001F600", "\U0001F602", "\U0001F44D", "\U0001F44D\U0001F3FD", "\u2764\ufe0f", "\U0001F525", "\U0001F680",
         "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466", "\U0001F1EF\U0001F1F5", "\U0001F1FA\U0001F1F8",
         "\U0001F3F3\ufe0f\u200d\U0001F308", "\u2705", "\U0001F914", "1\ufe0f\u20e3", "\U0001F9D1\u200d\U0001F4BB",
         "\U0001F469\U0001F3FE\u200d\U0001F52C", "\u263a", "\U0001FAE0"]
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
    "a+=b; c<=d>=e; f^=g|h~i; $var = @arr[$i]; 1e-9 !== 0x1F;\n",
    "// TODO(me): fix it!!! ??? ... --- === *** ###\n",
    "    \n    \n\n\n   \t \n",
]
WHITESPACE = [" ", "  ", "   ", "    ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "\t\n", "\u3000", "\u00a0", "\u2009",
              "\u2028", "\x0b", "\x0c", "\x85", " \u00a0 ", "\u200b", "\ufeff"]
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
            "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>", "<s>", "</s>",
            "<think>", "</think>", "<fim_prefix>", "<|padding|>", "<unk>"]
ODD = ["\x00", "\x7f", "\x01\x02", "\ufffd", "\U0001D400\U0001D401", "\u00bd\u00b2\u2167\u2460", "\uff11\uff12\uff13",
       "\u0660\u0661\u0662", "\u096a\u096b", "\U00020000\U0002A6D6", "\u00b5m", "\u212b\u2126", "\ue000",
       "\u01c5\u1f88", "\u02b0\u02b1", "\u0e01\u0e34\u0e19\u0e02\u0e49\u0e32\u0e27"]


def prose(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(1, 5)):
        n = rng.randint(3, 20)
        words = [rng.choice(WORDS) for _ in range(n)]
        words[0] = words[0].capitalize()
        for i in range(1, n):
            r = rng.random()
            if r < 0.08:
                words[i] += rng.choice(CONTRACTIONS)
            elif r < 0.14:
                words[i] += rng.choice([",", ";", ":", "!", "?", "...", ")", "\u2014", "\u2026", "\"", ".", "-"])
            elif r < 0.18:
                words[i] = words[i].upper()
            elif r < 0.20:
                words[i] = "(" + words[i]
        out.append(" ".join(words) + rng.choice([".", ".", "!", "?", ":", "..."]))
    return rng.choice([" ", ""]) + " ".join(out) + rng.choice(["\n", "\n\n", " ", "\r\n", "", "  "])


def chinese(rng: random.Random) -> str:
    s = [rng.choice(CJK) if rng.random() > 0.08 else rng.choice("，。、；：？！“”（）《》…—") for _ in range(rng.randint(4, 50))]
    if rng.random() < 0.1:
        s.append(chr(rng.randint(0x4E00, 0x9FFF)))
    if rng.random() < 0.05:
        s.append(chr(rng.randint(0x20000, 0x2A6DF)))
    return "".join(s) + rng.choice(["。", "\n", "，", " "])


def scripts(rng: random.Random) -> str:
    s = rng.choice([JA, KO, RU, AR, HI, GREEK, " ".join(ACCENTS)])
    a = rng.randrange(len(s))
    return s[a:a + rng.randint(3, 60)] + rng.choice([" ", "\n", "", "  "])


def numbers(rng: random.Random) -> str:
    k = rng.randint(1, 20)
    return rng.choice([
        str(rng.randrange(10 ** k)),
        "0" * rng.randint(1, 4) + str(rng.randrange(10 ** k)),
        f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}",
        f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        f"0x{rng.getrandbits(32):08x}",
        f"{rng.randrange(10 ** k):,}",
        f"v{rng.randint(0, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}",
        "".join(rng.choice("0123456789") for _ in range(k)) + rng.choice(["px", "%", "th", "k", "MB", ""]),
        rng.choice(ODD[5:10]),
    ]) + rng.choice([" ", ", ", "\n", "", ".", " and "])


def emoji(rng: random.Random) -> str:
    return "".join(rng.choice(EMOJI) + rng.choice(["", " ", "", "!", "  "]) for _ in range(rng.randint(1, 6)))


def whitespace(rng: random.Random) -> str:
    return "".join(rng.choice(WHITESPACE) * rng.randint(1, 6) for _ in range(rng.randint(1, 4)))


def special(rng: random.Random) -> str:
    return rng.choice(["", " ", "\n"]) + rng.choice(SPECIALS) + rng.choice(["", " ", "\n", "Hello", "x"])


def odd(rng: random.Random) -> str:
    return rng.choice(ODD) + rng.choice(["", " ", "a"])


KINDS = [(prose, 34), (chinese, 12), (scripts, 12), (CODE, 12), (numbers, 10), (emoji, 5), (whitespace, 8),
         (special, 3), (odd, 3)]


def segment(rng: random.Random) -> str:
    kinds, weights = zip(*KINDS)
    k = rng.choices(kinds, weights)[0]
    return rng.choice(k) if isinstance(k, list) else k(rng)


EDGE_DOCS = ["", " ", "  ", "\n", " \n ", "a", " a", "  a", "a ", "a  ", "\t\ta", "'s", "'S'", "I'M", "don'T",
             "123", "1234567", " 1", "\u00e9", "e\u0301", "\U0001F600", "<s>", " <s> ", "<|endoftext|><|endoftext|>",
             "Hello<|im_end|>world", "x" * 300, " " * 50, "\n" * 10 + "a", "\u3000\u3000a", "a\u00a0b", "\r\n\r\n"]


def documents(seed: int, size: int) -> list[str]:
    rng = random.Random(seed)
    docs = list(EDGE_DOCS)
    total = sum(len(d.encode()) for d in docs)
    while total < size:
        n = rng.choice([1, 1, 2, 4, 8, 16, 32, 64])
        d = "".join(segment(rng) for _ in range(n))
        docs.append(d)
        total += len(d.encode())
    return docs


# ---- tokenizer configurations ----------------------------------------------------------------

GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = LLAMA3_RE.replace(r"\p{N}{1,3}", r"\p{N}")


def char_class(ranges: list[tuple[int, int]]) -> str:
    return "[" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


# DeepSeek LLM's letter and punctuation sets (the code points of llama.cpp's regexes).
DS_LETTERS = [(0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA), (0x1BC, 0x1BF),
              (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377), (0x37B, 0x37D), (0x37F, 0x37F),
              (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481),
              (0x48A, 0x52F), (0x531, 0x556), (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1C90, 0x1CBA),
              (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15),
              (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59),
              (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC),
              (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB),
              (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2102, 0x2102), (0x2107, 0x2107),
              (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126),
              (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F),
              (0x2145, 0x2149), (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4),
              (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3), (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F),
              (0xA771, 0xA787), (0xA78B, 0xA78E), (0xAB70, 0xABBF), (0xFB00, 0xFB06), (0xFB13, 0xFB17),
              (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0x10400, 0x1044F), (0x104B0, 0x104D3), (0x104D8, 0x104FB),
              (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF), (0x1E900, 0x1E943)]
DS_PUNCT = [(0x21, 0x2F), (0x3A, 0x7E), (0xFF01, 0xFF0F), (0xFF1A, 0xFF5E), (0x2018, 0x201F), (0x3000, 0x3002)]
DS_CJK = [(0x4E00, 0x9FA5), (0x800, 0x4E00), (0xAC00, 0xD7FF)]

BOS3, EOS3, EOT3 = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"
DS_BOS, DS_EOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>"

# name: (pre, specials (control), user-defined tokens, ignore_merges, gguf ids/flags, arch)
BPE_CONFIGS = {
    "llama-bpe": dict(pre="llama-bpe", specials=[BOS3, EOS3, EOT3, "<|start_header_id|>"], user=["<think>", "</think>"],
                      ignore_merges=True, bos=BOS3, eos=EOS3, eot=EOT3, add_bos=True, arch="llama"),
    "qwen2": dict(pre="qwen2", specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], user=["<think>"],
                  bos=None, eos="<|im_end|>", pad="<|endoftext|>", add_bos=False, arch="qwen2"),
    "deepseek-llm": dict(pre="deepseek-llm", specials=[DS_BOS, DS_EOS], user=[], bos=DS_BOS, eos=DS_EOS, add_bos=True,
                         arch="llama"),
    "gpt-2": dict(pre="gpt-2", specials=["<|endoftext|>"], user=[], bos="<|endoftext|>", eos="<|endoftext|>",
                  add_bos=False, arch="gpt2"),
    "olmo": dict(pre="olmo", specials=["<|endoftext|>", "<|padding|>"], user=["    ", "  "], bos=None,
                 eos="<|endoftext|>", pad="<|padding|>", add_bos=False, arch="olmo"),
    "default": dict(pre="default", specials=["<s>", "</s>"], user=[], bos="<s>", eos="</s>", add_bos=True, arch="llama"),
    "starcoder": dict(pre="starcoder", specials=["<|endoftext|>", "<fim_prefix>"], user=[], bos="<|endoftext|>",
                      eos="<|endoftext|>", add_bos=False, arch="starcoder2"),
}


def hf_pre_tokenizer(name: str):
    from tokenizers import Regex, pre_tokenizers as pt
    bl = pt.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)
    split = lambda r: pt.Split(Regex(r), behavior="isolated", invert=False)  # noqa: E731
    if name == "llama-bpe":
        return pt.Sequence([split(LLAMA3_RE), bl])
    if name == "qwen2":
        return pt.Sequence([split(QWEN2_RE), bl])
    if name == "deepseek-llm":
        return pt.Sequence([
            split(r"[\r\n]"), split(r"\s?" + char_class(DS_LETTERS) + "+"), split(r"\s?" + char_class(DS_PUNCT) + "+"),
            split(r"\s+$"), split(char_class(DS_CJK) + "+"), pt.Digits(individual_digits=True), bl])
    if name in ("gpt-2", "olmo"):
        return pt.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if name == "default":
        return pt.Sequence([split(r"[\p{P}\$\+<=>\^~\|]+"), split(GPT2_RE), split(r"\p{N}+"), split(r"[0-9][0-9][0-9]"), bl])
    if name == "starcoder":
        return pt.Sequence([pt.Digits(individual_digits=True), pt.ByteLevel(add_prefix_space=False, use_regex=True)])
    raise ValueError(name)


def train_bpe(name: str, cfg: dict, docs: list[str], vocab_size: int):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = hf_pre_tokenizer(name)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=cfg["specials"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(docs, trainer)
    if cfg["user"]:
        tok.add_tokens([AddedToken(u, special=False, normalized=False) for u in cfg["user"]])
    if cfg.get("ignore_merges"):
        d = json.loads(tok.to_str())
        d["model"]["ignore_merges"] = True
        tok = Tokenizer.from_str(json.dumps(d))
    return tok


def write_bpe_gguf(path: Path, name: str, cfg: dict, tok) -> None:
    import gguf
    d = json.loads(tok.to_str())
    vocab = tok.get_vocab(with_added_tokens=True)
    reverse = {i: t for t, i in vocab.items()}
    specials, user = set(cfg["specials"]), set(cfg["user"])
    tokens, types = [], []
    for i in range(max(reverse) + 1):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        t = reverse[i]
        tokens.append(t)
        types.append(gguf.TokenType.CONTROL if t in specials else gguf.TokenType.USER_DEFINED if t in user
                     else gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in d["model"]["merges"]]
    w = gguf.GGUFWriter(str(path), arch=cfg["arch"])
    w.add_name(f"roost tokenizer fixture {name}")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(cfg["pre"])
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    for key, fn in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id), ("eot", w.add_eot_token_id),
                    ("pad", w.add_pad_token_id)):
        if cfg.get(key):
            fn(vocab[cfg[key]])
    w.add_add_bos_token(cfg["add_bos"])
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


SPM_CONFIGS = {
    "spm-bytefallback": dict(byte_fallback=True, vocab_size=2000),
    "spm-nofallback": dict(byte_fallback=False, vocab_size=1500),
}


def train_spm(cfg: dict, docs: list[str]) -> bytes:
    import sentencepiece as spm
    # Training sentences are lines; text with newlines is tokenized whole at test time.
    lines = [line for d in docs for line in d.split("\n") if line.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=cfg["vocab_size"],
        byte_fallback=cfg["byte_fallback"], character_coverage=0.9995, normalization_rule_name="identity",
        add_dummy_prefix=True, remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=2, minloglevel=2, max_sentence_length=1 << 16,
        input_sentence_size=0, shuffle_input_sentence=False)
    return model.getvalue()


def write_spm_gguf(path: Path, name: str, model_bytes: bytes) -> None:
    import gguf
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.IdToPiece(i))
        scores.append(sp.GetScore(i))
        t = gguf.TokenType.NORMAL
        if sp.IsUnknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.IsControl(i):
            t = gguf.TokenType.CONTROL
        elif sp.IsUnused(i):
            t = gguf.TokenType.UNUSED
        elif sp.IsByte(i):
            t = gguf.TokenType.BYTE
        types.append(t)
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_name(f"roost tokenizer fixture {name}")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    # As trained above (normalizer_spec; reading it back would need protobuf).
    w.add_add_space_prefix(True)
    w.add_remove_extra_whitespaces(False)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


def make_fixtures(out: Path, vocab_size: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    docs = documents(seed=7, size=1_500_000)
    for name, cfg in BPE_CONFIGS.items():
        tok = train_bpe(name, cfg, docs, vocab_size)
        tok.save(str(out / f"{name}.tokenizer.json"))
        write_bpe_gguf(out / f"{name}.gguf", name, cfg, tok)
        print(f"{name}: {tok.get_vocab_size(with_added_tokens=True)} tokens")
    for name, cfg in SPM_CONFIGS.items():
        model = train_spm(cfg, docs)
        (out / f"{name}.model").write_bytes(model)
        write_spm_gguf(out / f"{name}.gguf", name, model)
        print(f"{name}: {cfg['vocab_size']} pieces")


# ---- expected ids ----------------------------------------------------------------------------

def write_i32(path: Path, values: list[int]) -> None:
    path.write_bytes(struct.pack(f"<{len(values)}i", *values))


def make_vectors(out: Path, fixtures: Path, size: int, seed: int) -> int:
    try:
        import sentencepiece as spm
        from tokenizers import Tokenizer
    except ImportError as e:
        print(f"error: {e} (install tools/requirements.txt)", file=sys.stderr)
        return 77
    out.mkdir(parents=True, exist_ok=True)
    docs = documents(seed=seed, size=size)
    encoded = [d.encode("utf-8") for d in docs]
    (out / "corpus.bin").write_bytes(b"".join(encoded))
    write_i32(out / "corpus.lens", [len(e) for e in encoded])
    for name in BPE_CONFIGS:
        tok = Tokenizer.from_file(str(fixtures / f"{name}.tokenizer.json"))
        for suffix, split_special in (("", False), (".plain", True)):
            tok.encode_special_tokens = split_special
            encs = tok.encode_batch(docs, add_special_tokens=False)
            write_i32(out / f"{name}{suffix}.ids", [i for e in encs for i in e.ids])
            write_i32(out / f"{name}{suffix}.counts", [len(e.ids) for e in encs])
        print(f"{name}: {sum(map(len, encoded))} bytes")
    for name in SPM_CONFIGS:
        sp = spm.SentencePieceProcessor(model_file=str(fixtures / f"{name}.model"))
        ids = sp.encode(docs)
        write_i32(out / f"{name}.plain.ids", [i for e in ids for i in e])
        write_i32(out / f"{name}.plain.counts", [len(e) for e in ids])
        print(f"{name}: {sum(map(len, encoded))} bytes")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", nargs="?", const=str(FIXTURES), help="train and write the committed fixtures")
    ap.add_argument("--vectors", help="write the test corpus and the oracle's ids into this directory")
    ap.add_argument("--fixtures-dir", default=str(FIXTURES))
    ap.add_argument("--size", type=int, default=1_100_000, help="minimum corpus size in bytes (--vectors)")
    ap.add_argument("--seed", type=int, default=20240418)
    ap.add_argument("--vocab-size", type=int, default=3000)
    args = ap.parse_args()
    if args.fixtures:
        make_fixtures(Path(args.fixtures), args.vocab_size)
    if args.vectors:
        return make_vectors(Path(args.vectors), Path(args.fixtures_dir), args.size, args.seed)
    if not args.fixtures and not args.vectors:
        ap.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
