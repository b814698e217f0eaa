#!/usr/bin/env python3
"""Reference embeddings for tests/minilm.rs, computed independently of candle.

A small BERT forward pass in float64 numpy over the same model.safetensors, with mean
pooling and L2 normalisation (what sentence-transformers does for all-MiniLM-L6-v2), and
a pure-Python BERT tokenizer (BasicTokenizer + WordPiece, from vocab.txt) checked against
the Hugging Face `tokenizers` output of tokenizer.json. It prints the token ids and the
first dimensions of each embedding, which the Rust test hard-codes.

Regenerate (needs only a throwaway venv; nothing is installed in the project):

    python3 -m venv /tmp/embref && /tmp/embref/bin/pip install numpy safetensors tokenizers
    /tmp/embref/bin/python shared/embed/tests/minilm_reference.py "$(./infra/fetch-model.sh)"
"""

import json
import math
import sys
import unicodedata
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "Alice prefers dark mode and vim keybindings.",
    "The quarterly revenue grew by 12 percent!",
    "Café naïve résumé, CO₂ and emoji 🚀 too?",
]
MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length
SHOWN_DIMS = 16


# --- tokenizer: BERT BasicTokenizer + WordPiece, written from the algorithm ------------
def load_vocab(path):
    return {line.rstrip("\n"): i for i, line in enumerate(path.open(encoding="utf-8"))}


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return any(
        lo <= cp <= hi
        for lo, hi in [
            (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
        ]
    )


def basic_tokenize(text):
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            cleaned.append(" ")
        elif is_cjk(cp):
            cleaned.append(f" {ch} ")
        else:
            cleaned.append(ch)
    text = "".join(cleaned).lower()
    # strip_accents is unset and lowercase is on, so accents are stripped (BERT's rule).
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    out = []
    for word in text.split():
        cur = ""
        for ch in word:
            if is_punct(ch):
                if cur:
                    out.append(cur)
                out.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            out.append(cur)
    return out


def wordpiece(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


def encode(text, vocab):
    tokens = [p for w in basic_tokenize(text) for p in wordpiece(w, vocab)]
    tokens = ["[CLS]"] + tokens[: MAX_TOKENS - 2] + ["[SEP]"]
    return [vocab[t] for t in tokens]


# --- model --------------------------------------------------------------------------------
def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def embed(ids, w, cfg):
    g = lambda k: w[k].astype(np.float64)
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    n = len(ids)
    x = g("embeddings.word_embeddings.weight")[ids]
    x = x + g("embeddings.position_embeddings.weight")[:n]
    x = x + g("embeddings.token_type_embeddings.weight")[[0] * n]
    x = layer_norm(x, g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
    hidden = x.shape[1]
    hd = hidden // heads
    lin = lambda t, p: t @ g(p + ".weight").T + g(p + ".bias")
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = lin(x, p + "attention.self.query").reshape(n, heads, hd).transpose(1, 0, 2)
        k = lin(x, p + "attention.self.key").reshape(n, heads, hd).transpose(1, 0, 2)
        v = lin(x, p + "attention.self.value").reshape(n, heads, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, hidden)
        a = lin(ctx, p + "attention.output.dense")
        x = layer_norm(a + x, g(p + "attention.output.LayerNorm.weight"), g(p + "attention.output.LayerNorm.bias"), eps)
        h = gelu(lin(x, p + "intermediate.dense"))
        o = lin(h, p + "output.dense")
        x = layer_norm(o + x, g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias"), eps)
    pooled = x.mean(0)  # one sentence, no padding: the mask is all ones
    return pooled / np.linalg.norm(pooled)


def main():
    model_dir = Path(sys.argv[1])
    cfg = json.loads((model_dir / "config.json").read_text())
    vocab = load_vocab(model_dir / "vocab.txt")
    hf = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    hf.no_padding()
    hf.enable_truncation(MAX_TOKENS)
    weights = load_file(str(model_dir / "model.safetensors"))
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    vecs = []
    for s in SENTENCES:
        ids = encode(s, vocab)
        hf_ids = hf.encode(s).ids
        assert ids == hf_ids, f"tokenizers disagree on {s!r}: {ids} vs {hf_ids}"
        v = embed(ids, weights, cfg)
        vecs.append(v)
        print(f"// {s!r}")
        print(f"ids: {ids}")
        print("dims: [" + ", ".join(f"{x:.6}" for x in v[:SHOWN_DIMS]) + "]")
    for i in range(len(vecs)):
        for j in range(i + 1, len(vecs)):
            print(f"cos({i},{j}) = {float(vecs[i] @ vecs[j]):.6f}")


if __name__ == "__main__":
    main()
