#!/usr/bin/env python3
"""Reference fixtures for io/: safetensors files, 16-bit float conversions, SpikeGPT's char vocabulary and
Hugging Face's BertTokenizer.

Writes the files under tests/reference/fixtures/io/ that tests/unit/io.cpp reads.  Regenerate from the
repository root with

    /usr/bin/python3 tests/reference/io.py            # writes the fixtures
    /usr/bin/python3 tests/reference/io.py --check    # compare, write nothing

Parts A and B need only torch (Debian's python3-torch).  Part C needs Hugging Face `transformers` (4.x, for
the pure-Python BertTokenizer) and is skipped, keeping the committed wordpiece fixtures, when it cannot be
imported; a throwaway environment is enough:

    /usr/bin/python3 -m venv --system-site-packages /tmp/hf
    /tmp/hf/bin/pip install "transformers<5" tokenizers safetensors
    /tmp/hf/bin/python tests/reference/io.py

When the `safetensors` package is importable too, the hand-written files of part A are checked byte for byte
against safetensors.torch.save of the same tensors; when `tokenizers` is, part C reports whether the fast
(Rust) tokenizer agrees with the Python one on every case.

Part A (safetensors).  The files are written by hand in the layout of the Python package: 8-byte
little-endian header length; JSON header with "__metadata__" first (keys sorted), then the tensors in data
order -- by dtype (I64, F64, F32, I32, BF16, F16; the package sorts by its dtype enumeration, descending) and
then by name -- each as {"dtype", "shape", "data_offsets"}, compact separators, non-ASCII unescaped; the header
padded with spaces to a multiple of 8; then the tensors' bytes, little-endian, row-major.
  io/dtypes.safetensors   one tensor per dtype (plus a scalar and an empty tensor) and metadata
  io/model.safetensors    the state dict of a small torch module (embedding, layer norm, linear)
  io/values.txt           their values (as float64 text, integers as integers), and the conversion table
                          conv/x_bits (float32 bit patterns, incl. ties, subnormals, overflow, inf, nan) ->
                          conv/f16_bits, conv/bf16_bits as torch's .half() / .bfloat16() give them.

Part B (characters).  io/char_text.txt and io/char_vocab.json: the vocabulary SpikeGPT/RWKV-LM build for
enwik8 (sorted distinct characters; json.dumps({id: char}, ensure_ascii=False) written with Python's "utf-16"
codec); values.txt holds char/ids, the ids of the text.

Part C (WordPiece).  io/vocab.txt (a small BERT-style vocabulary built here) and io/wordpiece.json: for each
sentence, BertTokenizer's tokens, ids with [CLS]/[SEP], decode() with and without special tokens, for the
uncased tokenizer (do_lower_case=True) and, on the sentences already in NFC, the cased one; plus pair,
truncation and padding cases.
"""

import argparse
import json
import math
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures", "io")

ST_DTYPE = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.int64: "I64", torch.int32: "I32"}
ST_RANK = {"I64": 0, "F64": 1, "F32": 2, "I32": 3, "BF16": 4, "F16": 5}


# ----------------------------------------------------------------------------------------------------------
# Part A: safetensors by hand
# ----------------------------------------------------------------------------------------------------------
def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def st_serialize(tensors, metadata=None):
    names = sorted(tensors, key=lambda n: (ST_RANK[ST_DTYPE[tensors[n].dtype]], n))
    header = {}
    if metadata is not None:
        header["__metadata__"] = dict(sorted(metadata.items()))
    off, blobs = 0, []
    for n in names:
        b = tensor_bytes(tensors[n])
        header[n] = {"dtype": ST_DTYPE[tensors[n].dtype], "shape": list(tensors[n].shape),
                     "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def check_against_package(tensors, metadata, blob, what):
    try:
        import safetensors.torch as st
    except Exception:  # the package is optional
        return "safetensors package not available: %s not cross-checked" % what
    ref = st.save(tensors, metadata=metadata)
    if ref == blob:
        return "%s is byte-identical to safetensors.torch.save" % what
    # The package writes "__metadata__" in hash-map order (which varies from run to run); everything else --
    # header length, tensor entries and their order, data -- must still agree.
    n, m = struct.unpack("<Q", blob[:8])[0], struct.unpack("<Q", ref[:8])[0]
    mine, theirs = json.loads(blob[8:8 + n]), json.loads(ref[8:8 + m])
    if n != m or mine != theirs or list(mine) != list(theirs) or blob[8 + n:] != ref[8 + m:]:
        raise SystemExit("hand-written %s differs from safetensors.torch.save" % what)
    return ("%s agrees with safetensors.torch.save (same tensors, order and data; the package writes "
            "__metadata__ keys in hash order, this file sorted)" % what)


def dtype_tensors():
    torch.manual_seed(0)
    f16 = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.103515625e-05, 5.960464477539063e-08, 0.1, 1234.5],
                       dtype=torch.float16)
    bf16 = torch.tensor([0.0, 1.0, -3.140625, 3.3895313892515355e38, 9.183549615799121e-41, 0.1, -1e-3],
                        dtype=torch.bfloat16)
    return {
        "f64": torch.randn(2, 3, dtype=torch.float64),
        "f32": torch.randn(3, 2, dtype=torch.float32),
        "f16": f16,
        "bf16": bf16,
        "i64": torch.tensor([0, -1, 2 ** 62, -(2 ** 63), 2 ** 63 - 1, 123456789012], dtype=torch.int64),
        "i32": torch.tensor([[0, -1], [2 ** 31 - 1, -(2 ** 31)]], dtype=torch.int32),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "block.0.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4),
    }


DTYPE_METADATA = {"format": "pt", "source": "tests/reference/io.py", "unicode": "h\u00e9llo \u2713 \U0001F600",
                  "escapes": "quote \" backslash \\ newline \n tab \t"}


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(11, 4)
        self.ln = torch.nn.LayerNorm(4)
        self.head = torch.nn.Linear(4, 3)


def model_state():
    torch.manual_seed(1)
    m = Tiny()
    with torch.no_grad():
        m.ln.weight.uniform_(0.5, 1.5)
        m.ln.bias.uniform_(-0.1, 0.1)
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def conversion_table():
    """float32 inputs (as bit patterns) and torch's binary16 / bfloat16 roundings of them."""
    vals = [0.0, -0.0, 1.0, -1.0, 0.1, 1.0 / 3.0, 65504.0, 65519.99, 65520.0, 1e5, -1e5, 6.1035156e-05,
            6.0e-05, 5.96e-08, 2.98e-08, 2.99e-08, 1e-9, 1.0009765625, 1.00048828125, 1.00146484375, 2049.0,
            2051.0, 3.0e38, 3.4028235e38, 1e-40, 1.17549435e-38, -7.25, 1.00390625, 1.01171875, 257.0, 259.0]
    x = torch.tensor(vals, dtype=torch.float32)
    x = torch.cat([x, torch.tensor([math.inf, -math.inf, math.nan], dtype=torch.float32)])
    torch.manual_seed(2)
    x = torch.cat([x, torch.randn(64, dtype=torch.float32) * 10.0 ** torch.randint(-8, 8, (64,)).float()])
    x_bits = x.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    f16 = x.half().view(torch.int16).to(torch.int64) & 0xFFFF
    bf16 = x.bfloat16().view(torch.int16).to(torch.int64) & 0xFFFF
    return x_bits, f16, bf16


def format_tensor(name, t):
    t = t.detach().contiguous()
    shape = list(t.shape) if t.dim() > 0 else [1]
    head = "tensor %s %d %s" % (name, len(shape), " ".join(str(d) for d in shape))
    if t.is_floating_point():
        vals = " ".join("%.17g" % v for v in t.to(torch.float64).reshape(-1).tolist())
    else:
        vals = " ".join("%d" % v for v in t.reshape(-1).tolist())
    return head + "\n" + vals + "\n"


# ----------------------------------------------------------------------------------------------------------
# Part B: SpikeGPT's char vocabulary
# ----------------------------------------------------------------------------------------------------------
CHAR_TEXT = ("In the beginning God created the heaven and the earth.\n"
             "\tTabs, \"quotes\", back\\slash, caf\u00e9, na\u00efve, \u00c5ngstr\u00f6m, \u03b1\u03b2\u03b3, "
             "\u4e2d\u6587, emoji \U0001F600\U0001F44D, control \x01\x1f and DEL \x7f.\r\n"
             "Zero\u200bwidth, \u2028line separator, \ufeffBOM inside.\n")


def spikegpt_vocab(text):
    """RWKV-LM / SpikeGPT: unique = sorted(list(set(data))); xxObj[i] = u; json.dumps(ensure_ascii=False)."""
    unique = sorted(list(set(text)))
    xx_obj = {i: u for i, u in enumerate(unique)}
    stoi = {u: i for i, u in enumerate(unique)}
    return json.dumps(xx_obj, ensure_ascii=False), [stoi[c] for c in text]


# ----------------------------------------------------------------------------------------------------------
# Part C: WordPiece
# ----------------------------------------------------------------------------------------------------------
SENTENCES = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "unaffable",
    "He was playing; she played. They're unplayable!",
    "H\u00e9llo W\u00f6rld \u2014 na\u00efve caf\u00e9 r\u00e9sum\u00e9.",
    "\u00c0\u00c9\u00ce\u00d5\u00dc \u00e0\u00e9\u00ee\u00f5\u00fc \u00c7\u00e7 \u00d1\u00f1 \u00c5\u00e5 \u00d8\u00f8 "
    "\u00c6\u00e6 \u00df \u00ff",
    "\u0141\u00f3d\u017a, Krak\u00f3w; Dvo\u0159\u00e1k, \u0160koda, \u0151\u0171 \u0127 \u01c4 \u1e9e",
    "\u0130stanbul \u0131\u015f\u0131k",
    "\u0391\u0398\u0397\u039d\u0391 \u0395\u03bb\u03bb\u03ac\u03b4\u03b1 \u039f\u0394\u039f\u03a3",
    "\u041c\u043e\u0441\u043a\u0432\u0430 \u0401\u043b\u043a\u0430 \u0419\u043e\u0433\u0443\u0440\u0442",
    "\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8\u3002",
    "\u6771\u4eac\u30bf\u30ef\u30fc\u306f\u9ad8\u3044",
    "\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4",
    "don't can't won't I'm you're it's we've",
    "I \u2764\ufe0f \U0001F355 and \U0001F44D\U0001F3FD!",
    "tab\there\nnew\rline\x00nul\x07bell\ufffdrepl",
    "zero\u200bwidth\u200djoiner soft\u00adhyphen",
    "non\u00a0breaking\u2003em\u3000ideographic",
    "a\u2028b\u2029c",
    "a" * 101,
    "b" * 100,
    "\u03b1" * 101 + " \u03b2",
    "[CLS] hello [SEP] [MASK] [mask] [UNK]x [PAD]y",
    "$100.00 + 50% = ?! (approx.) #hashtag @user ~tilde `back` |pipe| ^caret",
    "e\u0301 combining acute and n\u0303 tilde",
    "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \uff21\uff22\uff23\uff11\uff12\uff13",
    "\ufb01nance \ufb02ow",
    "\u0645\u0631\u062d\u0628\u0627 \u0645\u064e\u0631\u0652\u062d\u064e\u0628\u064b\u0627",
    "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
    "\u2211 x\u00b2 \u2264 \u221e \u2202f/\u2202x \u221a2 \u00bd",
    "",
    "   \t\n ",
    "Mr. Smith's co-operative (U.S.A.) e-mail: x@y.com",
    "xylophone zzyzx \u2603 snowman",
    "\U00020000\U0002A6DF ext-b \uf900\ufa0a compat",
    "unassigned\u0378here private\ue000use \U0010FFFF end",
    "In the beginning God created the heaven and the earth.",
]

PAIRS = [
    ("The quick brown fox", "jumps over the lazy dog.", {}),
    ("Hello, world!", "unaffable playing", {"max_length": 8, "truncation": True}),
    ("a b c d e f g h", "x y", {"max_length": 9, "truncation": True}),
    ("x y", "a b c d e f g h", {"max_length": 9, "truncation": True}),
    ("a b c d", "e f g h", {"max_length": 8, "truncation": True}),
    ("a b c d", "e f g h i", {"max_length": 8, "truncation": True}),
    ("short", "pair", {"max_length": 12, "padding": "max_length"}),
    ("He was playing", "she played", {"max_length": 9, "truncation": True, "padding": "max_length"}),
]

SINGLE_OPTIONS = [
    ("The quick brown fox jumps over the lazy dog.", {"max_length": 6, "truncation": True}),
    ("Hello, world!", {"max_length": 10, "padding": "max_length"}),
    ("unaffable playing", {"max_length": 5, "truncation": True, "padding": "max_length"}),
    ("Hello, world!", {"add_special_tokens": False}),
]

# A small BERT-style vocabulary: specials in BERT's layout, then single characters and ##characters, then
# words and word pieces. Words of the sentences are included unless listed in HOLD_OUT, so that those split
# into pieces.
HOLD_OUT = {"xylophone", "zzyzx", "unaffable", "unplayable", "played", "playing", "cafe", "resume", "naive",
            "snowman", "hashtag", "approx", "joiner", "ideographic", "combining", "finance", "kaprow"}
EXTRA_PIECES = ["un", "##aff", "##able", "play", "##ing", "##ed", "##play", "caf", "##e", "res", "##ume",
                "na", "##ive", "snow", "##man", "hash", "##tag", "ap", "##pro", "##x", "join", "##er",
                "ideo", "##graph", "##ic", "comb", "##ining", "fin", "##ance"]


def build_vocab():
    from transformers import BasicTokenizer

    specials = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(33, 127)]
    latin = [chr(c) for c in range(0xE0, 0x100) if chr(c) not in "\u00f7"]
    greek = [chr(c) for c in range(0x3B1, 0x3CA)]
    cyr = [chr(c) for c in range(0x430, 0x450)]
    cjk = list("\u6211\u7231\u5317\u4eac\u6771\u9ad8\u3002\u3044\u306f")
    pieces = ["##" + c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"]
    pieces += ["##" + c for c in greek + cyr]
    words = []
    for cased in (True, False):
        basic = BasicTokenizer(do_lower_case=cased)
        for s in SENTENCES:
            for w in basic.tokenize(s):
                if w not in HOLD_OUT and len(w) <= 20:
                    words.append(w)
    vocab, seen = [], set()
    for t in specials + chars + latin + greek + cyr + cjk + pieces + EXTRA_PIECES + sorted(words):
        if t not in seen:
            seen.add(t)
            vocab.append(t)
    return vocab


def hf_options(opts):
    out = dict(opts)
    out.setdefault("add_special_tokens", True)
    return out


def wordpiece_cases(vocab_path):
    import transformers
    from transformers import BertTokenizer

    transformers.logging.set_verbosity_error()
    fast_cls = None
    try:
        from transformers import BertTokenizerFast
        fast_cls = BertTokenizerFast
    except Exception:
        pass
    out = {"transformers": __import__("transformers").__version__, "uncased": [], "cased": [], "pairs": [],
           "single_options": []}
    disagreements = []
    for key, lower in (("uncased", True), ("cased", False)):
        tok = BertTokenizer(vocab_path, do_lower_case=lower)
        fast = fast_cls(vocab_path, do_lower_case=lower) if fast_cls else None
        for s in SENTENCES:
            if not lower and __import__("unicodedata").normalize("NFC", s) != s:
                continue  # the cased tokenizer NFC-normalizes first; spikelm does not (docs/io.md)
            ids = tok.encode(s)
            case = {"text": s, "tokens": tok.tokenize(s), "ids": ids,
                    "decode": tok.decode(ids), "decode_skip": tok.decode(ids, skip_special_tokens=True)}
            out[key].append(case)
            if fast is not None and fast.encode(s) != ids:
                disagreements.append((key, s))
    tok = BertTokenizer(vocab_path, do_lower_case=True)
    for a, b, opts in PAIRS:
        enc = tok(a, b, **hf_options(opts))
        out["pairs"].append({"a": a, "b": b, "options": opts, "ids": enc["input_ids"],
                             "token_type_ids": enc["token_type_ids"], "attention_mask": enc["attention_mask"]})
    for a, opts in SINGLE_OPTIONS:
        enc = tok(a, **hf_options(opts))
        out["single_options"].append({"a": a, "options": opts, "ids": enc["input_ids"],
                                      "token_type_ids": enc["token_type_ids"],
                                      "attention_mask": enc["attention_mask"]})
    if fast_cls is None:
        note = "BertTokenizerFast not available: fast tokenizer not compared"
    elif disagreements:
        note = "the fast tokenizer differs on %d case(s): %s" % (len(disagreements), disagreements)
    else:
        note = "the fast tokenizer agrees on every case"
    return out, note


# ----------------------------------------------------------------------------------------------------------
def build():
    """Returns {relative path: bytes} and a summary."""
    files, summary = {}, []
    dt = dtype_tensors()
    blob = st_serialize(dt, DTYPE_METADATA)
    files["dtypes.safetensors"] = blob
    summary.append(check_against_package(dt, DTYPE_METADATA, blob, "dtypes.safetensors"))
    ms = model_state()
    blob = st_serialize(ms, {"format": "pt"})
    files["model.safetensors"] = blob
    summary.append(check_against_package(ms, {"format": "pt"}, blob, "model.safetensors"))

    text = ["# Generated by tests/reference/io.py -- do not edit by hand (torch %s).\n" % torch.__version__,
            "# Format: as optim_losses.txt ('tensor <name> <ndim> <dims...>' then the values).\n"]
    for name, t in dt.items():
        text.append(format_tensor("dtypes/" + name, t.to(torch.float64) if t.is_floating_point() else t))
    for name, t in ms.items():
        text.append(format_tensor("model/" + name, t))
    x_bits, f16, bf16 = conversion_table()
    text.append(format_tensor("conv/x_bits", x_bits))
    text.append(format_tensor("conv/f16_bits", f16))
    text.append(format_tensor("conv/bf16_bits", bf16))
    vocab_json, ids = spikegpt_vocab(CHAR_TEXT)
    text.append(format_tensor("char/ids", torch.tensor(ids, dtype=torch.int64)))
    files["values.txt"] = "".join(text).encode("utf-8")
    files["char_text.txt"] = CHAR_TEXT.encode("utf-8")
    files["char_vocab.json"] = vocab_json.encode("utf-16")  # as RWKV-LM/SpikeGPT write vocab.json

    try:
        import transformers  # noqa: F401
    except Exception:
        summary.append("transformers not available: part C skipped (the committed vocab.txt and "
                       "wordpiece.json are kept)")
        return files, summary
    vocab = build_vocab()
    vocab_text = "".join(t + "\n" for t in vocab)
    files["vocab.txt"] = vocab_text.encode("utf-8")
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "vocab.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(vocab_text)
        cases, note = wordpiece_cases(path)
    files["wordpiece.json"] = (json.dumps(cases, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    summary.append("vocab.txt: %d tokens; wordpiece.json: %d uncased, %d cased, %d pair, %d option cases "
                   "(transformers %s); %s" % (len(vocab), len(cases["uncased"]), len(cases["cased"]),
                                             len(cases["pairs"]), len(cases["single_options"]),
                                             cases["transformers"], note))
    return files, summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=FIXTURES, help="fixture directory to write")
    ap.add_argument("--check", action="store_true", help="compare with the existing fixtures, write nothing")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    files, summary = build()
    for line in summary:
        print(line)
    if args.check:
        bad = []
        for name, data in files.items():
            path = os.path.join(args.out, name)
            if not os.path.exists(path) or open(path, "rb").read() != data:
                bad.append(name)
        if bad:
            print("fixtures differ: %s" % ", ".join(bad))
            return 1
        print("fixtures up to date in %s" % args.out)
        return 0
    os.makedirs(args.out, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
        print("wrote %s (%d bytes)" % (os.path.join(args.out, name), len(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
