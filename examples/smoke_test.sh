#!/usr/bin/env bash
# Smoke test of the language-model programs (ctest label "examples"): trains a tiny model for a few steps,
# then runs eval, generate and logits, checking the exit codes and that the logits file loads (read back with
# python3's standard library); then checks that bad input (a weights file of another architecture, token ids
# outside the vocabulary, a sequence longer than the context, a missing file, an unknown option) fails with a
# non-zero status and a message. spikegpt also resumes from a checkpoint and loads a reference-style weights
# file (no vocabulary in the metadata) with --vocab vocab.json in SpikeGPT's UTF-16 format. spiking_bert
# trains a tiny teacher, distils a student, trains one with feedback, and runs eval, predict, logits, hidden.
#
#   smoke_test.sh spikegpt|egru_lm|spiking_bert PROGRAM WORK_DIR
set -uo pipefail
kind=$1 prog=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

die() {
  echo "FAIL: $*" >&2
  exit 1
}
# run CMD...: must exit 0.
run() {
  echo "+ $*"
  "$@" || die "exit status $? from: $*"
}
# expect_error PATTERN CMD...: must exit non-zero and print a message containing PATTERN.
expect_error() {
  local pattern=$1 out rc
  shift
  echo "+ (must fail) $*"
  out=$("$@" 2>&1)
  rc=$?
  echo "$out" | tail -n 3
  [ "$rc" -ne 0 ] || die "exit status 0 from: $*"
  grep -qF -- "$pattern" <<<"$out" || die "no message containing '$pattern' from: $*"
}
# py SCRIPT ARGS...: python3 (standard library only).
py() {
  python3 - "$@" || die "python3 check failed: $*"
}

# Prints the vocabulary size from the metadata of a weights file and checks a logits file: tensor "logits"
# of dtype F32 and shape [T, V], plus the named tensors.
read_st='
import json, struct, sys
def read(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    for name, t in header.items():
        b, e = t["data_offsets"]
        count = 1
        for d in t["shape"]:
            count *= d
        assert e - b == count * {"F32": 4, "F64": 8, "I64": 8, "I32": 4, "F16": 2, "BF16": 2}[t["dtype"]], name
        assert 8 + n + e <= len(data), name
    return header, meta, data[8 + n:]
'

weights_vocab() {
  py "$1" <<EOF
$read_st
_, meta, _ = read(sys.argv[1])
print(len(json.loads(meta["vocab"])))
EOF
}

check_logits() { # FILE T V NAME...
  py "$@" <<EOF
$read_st
h, meta, _ = read(sys.argv[1])
T, V = int(sys.argv[2]), int(sys.argv[3])
assert h["logits"]["dtype"] == "F32" and h["logits"]["shape"] == [T, V], h["logits"]
for name in sys.argv[4:]:
    assert name in h, "no tensor %s in %s" % (name, sorted(h))
print("logits file OK:", sys.argv[1], sorted(h))
EOF
}

printf 'x' >other_short.safetensors
# A safetensors file that is neither model: one tensor "x".
py <<'EOF'
import json, struct
h = json.dumps({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
h += b" " * (-len(h) % 8)
open("other.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"\0" * 8)
EOF

if [ "$kind" = spikegpt ]; then
  tiny=(--layers 2 --width 16 --context 16 --batch 2 --log 1 --eval-chars 300)
  run "$prog" train "${tiny[@]}" --steps 4 --every 2 --checkpoint ck.safetensors --out w.safetensors \
    --init-out init.safetensors
  [ "$(weights_vocab init.safetensors)" = "$(weights_vocab w.safetensors)" ] || die "--init-out wrote no weights"
  run "$prog" train "${tiny[@]}" --steps 6 --every 2 --resume ck.safetensors --out w.safetensors \
    | tee resume.log
  grep -q "resumed from ck.safetensors at step 4" resume.log || die "train --resume did not resume at step 4"
  V=$(weights_vocab w.safetensors)
  run "$prog" eval --weights w.safetensors --eval-chars 300 >eval.log
  cat eval.log
  grep -q "^blocks.1.ffn " eval.log && grep -q "dense-equivalent energy" eval.log ||
    die "eval printed no synaptic-operation and energy report"
  run "$prog" eval --weights w.safetensors --split test --eval-chars 100 --batch 3
  run "$prog" generate --weights w.safetensors --length 20 --prompt "And" --seed 3
  run "$prog" generate --weights w.safetensors --length 5 --temperature 0
  run "$prog" logits --weights w.safetensors --tokens 3,1,4,1,5 --out logits.safetensors
  check_logits logits.safetensors 5 "$V" firing_rate.0.att firing_rate.0.ffn firing_rate.1.att firing_rate.1.ffn
  run "$prog" logits --weights w.safetensors --tokens 3,1,4,1,5 --out logits_rec.safetensors --mode recurrent
  check_logits logits_rec.safetensors 5 "$V" firing_rate.1.ffn

  # The reference's layout: the same tensors without metadata, and vocab.json in SpikeGPT's UTF-16.
  py <<'EOF'
import json, struct
data = open("w.safetensors", "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
vocab = json.loads(header.pop("__metadata__")["vocab"])
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open("reference.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + data[8 + n:])
with open("vocab.json", "w", encoding="utf-16") as f:
    json.dump(vocab, f, ensure_ascii=False)
EOF
  expect_error "pass --vocab vocab.json" "$prog" generate --weights reference.safetensors --length 5
  run "$prog" generate --weights reference.safetensors --vocab vocab.json --length 10 --seed 3
  run "$prog" eval --weights reference.safetensors --vocab vocab.json --context 16 --eval-chars 100
  run "$prog" logits --weights reference.safetensors --tokens 1,2 --out ref_logits.safetensors
  check_logits ref_logits.safetensors 2 "$V"

  expect_error "not a SpikeGPT weights set" "$prog" logits --weights other.safetensors --tokens 1 --out x.safetensors
  expect_error "outside the vocabulary" "$prog" logits --weights w.safetensors --tokens 1,100000 --out x.safetensors
  expect_error "outside the vocabulary" "$prog" logits --weights w.safetensors --tokens 1,-1 --out x.safetensors \
    --mode recurrent
  expect_error "longer than the context" "$prog" logits --weights w.safetensors --tokens 1,2,3,4,5 --context 4 \
    --out x.safetensors
  expect_error "--tokens expects" "$prog" logits --weights w.safetensors --tokens 1,x --out x.safetensors
  expect_error "cannot open" "$prog" generate --weights missing.safetensors
  expect_error "unknown option --stpes" "$prog" train --stpes 3
  expect_error "usage:" "$prog" bogus
elif [ "$kind" = egru_lm ]; then
  run "$prog" train --steps 5 --emb 16 --hidden 16 --layers 2 --batch 2 --bptt 8 --every 5 --eval-chars 200 \
    --out w.safetensors
  V=$(weights_vocab w.safetensors)
  run "$prog" eval --weights w.safetensors --eval-chars 200 >eval.log
  cat eval.log
  grep -q "activity sparsity .* (all units 0\.[0-9]*)" eval.log || die "eval printed no overall activity sparsity"
  # EvNN's stateful training (contiguous streams, y carried), per-layer threshold means, activity
  # regularisation; streaming eval
  run "$prog" train --steps 4 --emb 16 --hidden 16 --layers 2 --batch 2 --bptt 8 --every 4 --eval-chars 100 \
    --stateful --thr-mean 0.2,0.05 --activity-penalty 0.1 --out ws.safetensors
  run "$prog" eval --weights ws.safetensors --eval-chars 100 --context 16 --carry-h
  expect_error "2 per-layer threshold means for 3 layers" "$prog" train --steps 1 --layers 3 --thr-mean 0.2,0.1
  expect_error "--context must be positive" "$prog" eval --weights ws.safetensors --context 0
  expect_error "option --thr-mean expects a number, got 'x'" "$prog" train --steps 1 --thr-mean 0.2,x,0.1
  run "$prog" generate --weights w.safetensors --length 20 --seed 3
  run "$prog" logits --weights w.safetensors --tokens 3,1,4,1,5 --out logits.safetensors
  check_logits logits.safetensors 5 "$V"

  expect_error "egru_lm:" "$prog" logits --weights other.safetensors --tokens 1 --out x.safetensors
  expect_error "egru_lm:" "$prog" logits --weights w.safetensors --tokens 1,100000 --out x.safetensors
  expect_error "cannot open" "$prog" generate --weights missing.safetensors
  expect_error "usage:" "$prog" bogus
elif [ "$kind" = spiking_bert ]; then
  run "$prog" teacher --out t.safetensors --layers 1 --width 16 --heads 2 --ffn 32 --steps 3 --batch 4
  run "$prog" distill --teacher t.safetensors --out s.safetensors --layers 1 --T 4 --general-steps 2 \
    --task-steps 2 --pred-steps 2 --batch 4
  run "$prog" train --teacher t.safetensors --out fb.safetensors --layers 1 --T 4 --steps 2 --batch 4 --feedback 1
  run "$prog" eval --weights s.safetensors --T 4 >eval.log
  cat eval.log
  grep -q "dev accuracy" eval.log && grep -q "AC +" eval.log || die "eval printed no accuracy or operation report"
  run "$prog" eval --weights fb.safetensors --T 4 --split test
  run "$prog" eval --weights t.safetensors --split test
  run "$prog" predict --weights s.safetensors --text "And God said, Let there be light" --T 4
  run "$prog" logits --weights fb.safetensors --tokens 2,5,3 --T 4 --out logits.safetensors
  py <<EOF
$read_st
h, _, _ = read("logits.safetensors")
assert h["logits"]["shape"] == [6], h["logits"]
assert h["rates.E"]["shape"] == [3, 16] and h["rates.0.IM"]["shape"] == [3, 32], sorted(h)
print("logits file OK:", sorted(h))
EOF
  run "$prog" hidden --teacher t.safetensors --tokens 2,5,3 --out hidden.safetensors
  py <<EOF
$read_st
h, _, _ = read("hidden.safetensors")
assert len(h) == 2 and all(t["shape"] == [3, 16] for t in h.values()), h
print("hidden file OK:", sorted(h))
EOF

  expect_error "truncated" "$prog" eval --weights other_short.safetensors
  expect_error "not a BERT teacher" "$prog" hidden --teacher s.safetensors --tokens 1 --out x.safetensors
  expect_error "outside the vocabulary" "$prog" logits --weights s.safetensors --tokens 1,100000 --out x.safetensors
  expect_error "exceed max_position_embeddings" "$prog" logits --weights s.safetensors \
    --tokens "$(printf '5,%.0s' {1..59})5" --out x.safetensors
  expect_error "cannot open" "$prog" eval --weights missing.safetensors
  expect_error "unknown option --stpes" "$prog" train --stpes 3
  expect_error "unknown command" "$prog" bogus
else
  die "unknown program kind '$kind'"
fi
echo "smoke test of $kind passed"
