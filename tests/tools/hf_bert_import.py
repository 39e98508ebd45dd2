#!/usr/bin/env python3
"""tools/import_hf_bert.py and `spiking_bert teacher --init` (ctest: spiking_bert/tools/import_hf_bert; torch).

    hf_bert_import.py REPO_ROOT WORK_DIR SPIKING_BERT_EXECUTABLE

1. Writes a small random BERT (vocabulary 40, width 24, 3 heads, 2 layers, 16 positions) the way Hugging Face
   ships one: config.json, vocab.txt and model.safetensors under "bert."-prefixed names with the
   embeddings.position_ids buffer (I64) and a masked-LM head (cls.*) that the importer must drop; once as a
   directory and once inside a wheel-like zip.
2. Imports both with tools/import_hf_bert.py: the two outputs must be byte-identical.
3. `spiking_bert hidden` on the import must give the hidden states of tests/reference/bert.py's teacher (float64,
   the same weights) to 1e-4 relative.
4. `spiking_bert teacher --init` fine-tunes it for 2 steps: the encoder must start from the imported weights
   (moved by at most the Adam steps), the classifier is new ([6, 24]) and the vocabulary is the imported one.
5. Bad input gives a clear error: a source without vocab.txt, --width with --init, --max-len beyond the
   positions.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import torch

from safetensors_f32 import read_safetensors


def run(args, expect_ok=True):
    p = subprocess.run(args, capture_output=True, text=True)
    if expect_ok and p.returncode != 0:
        sys.exit("FAILED: %s\n%s%s" % (" ".join(args), p.stdout, p.stderr))
    return p


def main(root, work, exe):
    sys.path.insert(0, os.path.join(root, "tests", "reference"))
    sys.path.insert(0, os.path.join(root, "tools"))
    import bert as ref  # noqa: E402  (the PyTorch reference teacher, float64)
    import convert_checkpoint  # noqa: E402  (its safetensors writer)

    shutil.rmtree(work, ignore_errors=True)
    model_dir = os.path.join(work, "hf", "pkg", "model")
    os.makedirs(model_dir)
    layers = 2
    gen = torch.Generator().manual_seed(11)
    P = ref.random_params(ref.bert_shapes(layers, True, False), gen, 1.0)
    P = {k: v.detach().to(torch.float32).to(torch.float64) for k, v in P.items()}  # float32-exact values
    tensors = {"bert." + k: v.to(torch.float32) for k, v in P.items()}
    tensors["bert.embeddings.position_ids"] = torch.arange(ref.POS, dtype=torch.int64)[None]
    tensors["cls.predictions.bias"] = torch.zeros(ref.V)
    convert_checkpoint.write_atomic(os.path.join(model_dir, "model.safetensors"),
                                    convert_checkpoint.serialize(tensors, {"format": "pt"}))
    config = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_act": "gelu",
              "hidden_size": ref.D, "num_attention_heads": ref.H, "num_hidden_layers": layers,
              "intermediate_size": ref.FFN, "max_position_embeddings": ref.POS, "type_vocab_size": ref.TYPES,
              "vocab_size": ref.V, "layer_norm_eps": 1e-12, "_name_or_path": "tiny-random-bert"}
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "and", "of", "lord", "god", "unto", "he",
             "shall", "said", "his", "i", "a", "in", "that", "for", "them", "be", "is", "they", "him", "not",
             "with", "all", "it", "thou", "was", "thy", "which", "my", "me", "ye", "were", "have", ",", "."]
    assert len(words) == ref.V
    with open(os.path.join(model_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(words) + "\n")
    wheel = os.path.join(work, "tiny_bert-0.1-py3-none-any.whl")
    with zipfile.ZipFile(wheel, "w") as z:
        for name in ("config.json", "vocab.txt", "model.safetensors"):
            z.write(os.path.join(model_dir, name), "tiny_bert/model/" + name)
        z.writestr("tiny_bert/__init__.py", "")

    tool = os.path.join(root, "tools", "import_hf_bert.py")
    from_dir, from_zip = os.path.join(work, "from_dir.safetensors"), os.path.join(work, "from_zip.safetensors")
    out = run([sys.executable, tool, os.path.join(work, "hf"), "--out", from_dir, "--max-len", "16"]).stdout
    for dropped in ("bert.embeddings.position_ids", "cls.predictions.bias"):
        assert "dropped " + dropped in out, out
    run([sys.executable, tool, wheel, "--out", from_zip, "--max-len", "16"])
    assert open(from_dir, "rb").read() == open(from_zip, "rb").read(), "directory and wheel imports differ"
    imported, meta = read_safetensors(from_dir)
    assert set(imported) == set(P), sorted(set(imported) ^ set(P))
    assert meta["model"] == "bert" and meta["labels"] == "" and json.loads(meta["config"])["num_labels"] == 0
    assert meta["vocab"] == "\n".join(words) + "\n"

    # hidden states against the float64 reference
    ids = [2, 8, 10, 5, 12, 37, 9, 3]
    hid = os.path.join(work, "hidden.safetensors")
    run([exe, "hidden", "--teacher", from_dir, "--tokens", ",".join(map(str, ids)), "--out", hid])
    got, _ = read_safetensors(hid)
    with torch.no_grad():
        head = {"classifier.weight": torch.zeros(ref.C, ref.D, dtype=torch.float64),
                "classifier.bias": torch.zeros(ref.C, dtype=torch.float64)}  # the reference always has one
        want, _, _, _ = ref.teacher_forward(dict(P, **head), layers, torch.tensor([ids]),
                                            torch.zeros(1, len(ids), dtype=torch.long),
                                            torch.ones(1, len(ids), dtype=torch.float64))
    worst = 0.0
    for i, w in enumerate(want):
        g = got["hidden.%d" % i].to(torch.float64)
        worst = max(worst, float((g - w[0]).abs().max() / w[0].abs().max()))
    print("hidden states vs the reference: max relative error %.2e" % worst)
    assert worst < 1e-4, worst

    # fine-tuning starts from the imported encoder
    ft = os.path.join(work, "finetuned.safetensors")
    out = run([exe, "teacher", "--init", from_dir, "--out", ft, "--steps", "2", "--batch", "4",
               "--max-len", "16"]).stdout
    assert "new: classifier.weight classifier.bias" in out, out
    tuned, tmeta = read_safetensors(ft)
    assert list(tuned["classifier.weight"].shape) == [6, ref.D], tuned["classifier.weight"].shape
    assert tmeta["vocab"] == meta["vocab"] and json.loads(tmeta["config"])["num_labels"] == 6
    moved = max(float((tuned[k].to(torch.float64) - P[k]).abs().max()) for k in P)
    print("largest change of an imported weight after 2 Adam steps of lr 1e-4: %.2e" % moved)
    assert 0 < moved < 1e-3, moved

    # bad input
    broken = os.path.join(work, "broken")
    shutil.copytree(model_dir, broken)
    os.remove(os.path.join(broken, "vocab.txt"))
    p = run([sys.executable, tool, broken, "--out", os.path.join(work, "x.safetensors")], expect_ok=False)
    assert p.returncode != 0 and "no vocab.txt" in p.stderr, p.stderr
    p = run([exe, "teacher", "--init", from_dir, "--width", "64", "--out", ft], expect_ok=False)
    assert p.returncode != 0 and "--width cannot be combined with --init" in p.stderr, p.stderr
    p = run([exe, "teacher", "--init", from_dir, "--out", ft], expect_ok=False)  # --max-len 40 > 16 positions
    assert p.returncode != 0 and "exceeds the model's 16 positions" in p.stderr, p.stderr
    print("import_hf_bert: OK")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
