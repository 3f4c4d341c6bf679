#!/usr/bin/env python3
"""Convert the RWKV World vocabulary shipped in the `rwkv` PyPI package to GGUF token strings.

Does what llama.cpp's convert_hf_to_gguf.py (`_set_vocab_rwkv_world`) does: token 0 is `<s>`
(CONTROL), token i >= 1 is `repr(token_bytes)[2:-1]` from line i of rwkv_vocab_v20230424.txt
(NORMAL), and ids up to the model's vocabulary size (65536) are `[PADi]` (UNUSED); the model is
`tokenizer.ggml.model = "rwkv"`. Writes a GGUF with that tokenizer metadata only (no tensors):

    python tools/world_vocab_to_gguf_tokens.py out.gguf [--vocab-size 65536]

The package is located without importing it (importing `rwkv` may import torch); the reference
tokenizer is loaded from its file, see `load_reference_tokenizer`.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import sys
from pathlib import Path

VOCAB_FILE = "rwkv_vocab_v20230424.txt"
TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_UNUSED = 5


class MissingRwkvPackage(RuntimeError):
    pass


def rwkv_package_dir() -> Path:
    """Directory of the installed `rwkv` package, found without executing its __init__."""
    spec = importlib.util.find_spec("rwkv")
    if spec is None or not spec.submodule_search_locations:
        raise MissingRwkvPackage("the `rwkv` package is not installed (pip install -r tools/requirements.txt)")
    d = Path(list(spec.submodule_search_locations)[0])
    for name in ("rwkv_tokenizer.py", VOCAB_FILE):
        if not (d / name).is_file():
            raise MissingRwkvPackage(f"{d / name} is missing from the installed `rwkv` package")
    return d


def load_reference_tokenizer():
    """The package's TRIE_TOKENIZER, loaded from rwkv/rwkv_tokenizer.py by path (no torch)."""
    d = rwkv_package_dir()
    spec = importlib.util.spec_from_file_location("roost_rwkv_tokenizer", d / "rwkv_tokenizer.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.TRIE_TOKENIZER(str(d / VOCAB_FILE))


def vocab_token_bytes(vocab_path: Path) -> list[bytes]:
    """Token bytes by id; entry 0 is the `<s>` placeholder (the file starts at id 1)."""
    tokens: list[bytes] = [b"<s>"]
    with open(vocab_path, "r", encoding="utf-8") as f:
        for line in f:
            parts = line.split(" ")
            assert len(parts) >= 3, line
            idx = int(parts[0])
            tok = ast.literal_eval(" ".join(parts[1:-1]))
            tok = tok.encode("utf-8") if isinstance(tok, str) else tok
            assert isinstance(tok, bytes) and len(tok) == int(parts[-1]), line
            assert idx == len(tokens), f"ids are not contiguous at {idx}"
            tokens.append(tok)
    return tokens


def gguf_tokens(vocab_size: int = 65536) -> tuple[list[str], list[int], list[bytes]]:
    """(GGUF token strings, token types, raw bytes per id) as convert_hf_to_gguf.py writes them."""
    raw = vocab_token_bytes(rwkv_package_dir() / VOCAB_FILE)
    texts = ["<s>"] + [repr(t)[2:-1] for t in raw[1:]]
    types = [TOKEN_TYPE_CONTROL] + [TOKEN_TYPE_NORMAL] * (len(raw) - 1)
    if vocab_size < len(texts):
        raise ValueError(f"vocabulary has {len(texts)} entries, more than --vocab-size {vocab_size}")
    for i in range(len(texts), vocab_size):
        texts.append(f"[PAD{i}]")
        types.append(TOKEN_TYPE_UNUSED)
        raw.append(f"[PAD{i}]".encode())
    return texts, types, raw


def write_gguf(path: str, vocab_size: int = 65536, arch: str = "rwkv7") -> None:
    import gguf

    texts, types, _ = gguf_tokens(vocab_size)
    w = gguf.GGUFWriter(path, arch)
    w.add_tokenizer_model("rwkv")
    w.add_token_list([t.encode("utf-8") for t in texts])
    w.add_token_types(types)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="GGUF file to write")
    ap.add_argument("--vocab-size", type=int, default=65536)
    ap.add_argument("--arch", default="rwkv7", help="general.architecture to record")
    args = ap.parse_args()
    try:
        write_gguf(args.out, args.vocab_size, args.arch)
    except MissingRwkvPackage as e:
        print(f"error: {e}", file=sys.stderr)
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
