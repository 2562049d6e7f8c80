#!/bin/bash
# tv-extract --text: CLIP encode_text features of each prompt equal Python's model.encode_text on the
# reference token ids (OpenAI's from tokenizer_cases.jsonl, else clip_tokenizer_reference.py);
# file_names.txt = the prompts; manifest records the prompts file + SHA-256; usage errors.
source "$(dirname "$0")/common.sh"
CASES="$TV_SOURCE_DIR/tests/data/clip/tokenizer_cases.jsonl"
VOCAB="$TV_SOURCE_DIR/data/clip/bpe_simple_vocab_16e6.txt.gz"
[[ -f "$CASES" ]] || fail "no $CASES"
"$TV_PYTHON" "$TV_SOURCE_DIR/models/export.py" --arch clip_vit_b32_standin --weights random --seed 0 \
  --out "$WORK/model" >/dev/null
MODEL="$WORK/model/clip_vit_b32_standin.pt"
[[ -f "$MODEL" ]] || fail "export wrote no $MODEL"

# 5 prompts (3 from the tokenizer cases, one with non-ASCII letters), batches of 2, 2, 1
printf '%s\n' "a photo of a cat." "A Photo of an AARDVARK!!" "a diagram of a neuron, drawn in ink" \
  "naïve café résumé" "an image of 123 apples & 4.5 pears" >"$WORK/prompts.txt"
"$TV_PYTHON" "$TV_SOURCE_DIR/tests/reference/clip_text_reference.py" "$MODEL" "$WORK/prompts.txt" \
  "$VOCAB" "$CASES" "$WORK/ref.npy"

check_features() {  # check_features DIR FILE: DIR/encode_text/FILE matches ref.npy
  "$TV_PYTHON" - "$1" "$2" "$WORK/ref.npy" "$WORK/prompts.txt" <<'PY' || fail "features differ from the Python reference: $1"
import hashlib, json, sys
import numpy as np
out, name, ref_file, prompts_file = sys.argv[1:5]
ref = np.load(ref_file)
if name.endswith(".npy"):
    got = np.load(f"{out}/encode_text/{name}")
else:
    import h5py
    with h5py.File(f"{out}/encode_text/{name}", "r") as f:
        got = f["features"][()]
assert got.shape == ref.shape, (got.shape, ref.shape)
diff = float(np.abs(got.astype(np.float64) - ref).max())
assert diff <= 1e-5 * float(np.abs(ref).max()), diff
prompts = open(prompts_file, encoding="utf-8").read().split("\n")[:-1]
assert open(f"{out}/file_names.txt", encoding="utf-8").read().split("\n")[:-1] == prompts
m = json.load(open(f"{out}/manifest.json"))
assert m["status"] == "complete" and m["text_file"] == prompts_file, m
assert m["text_sha256"] == hashlib.sha256(open(prompts_file, "rb").read()).hexdigest()
assert m["modules"][0]["directory"] == "encode_text" and m["num_images"] == len(prompts)
PY
}
expect_status 0 "$TV_EXTRACT" --model "$MODEL" --text "$WORK/prompts.txt" --out "$WORK/o" --batch-size 2 --quiet
check_features "$WORK/o" features.npy
expect_status 0 "$TV_EXTRACT" --model "$MODEL" --text "$WORK/prompts.txt" --vocab "$VOCAB" --out "$WORK/h" \
  --format hdf5 --quiet
check_features "$WORK/h" features.hdf5

# the check can fail: another seed gives other features
"$TV_PYTHON" "$TV_SOURCE_DIR/models/export.py" --arch clip_vit_b32_standin --weights random --seed 1 \
  --out "$WORK/model1" >/dev/null
expect_status 0 "$TV_EXTRACT" --model "$WORK/model1/clip_vit_b32_standin.pt" --text "$WORK/prompts.txt" --out "$WORK/o1" --quiet
if (check_features "$WORK/o1" features.npy) 2>/dev/null; then fail "seed 1 features matched seed 0's reference"; fi

# usage errors
expect_error 2 "--text" "$TV_EXTRACT" --model "$MODEL" --text "$WORK/prompts.txt" --images "$EXAMPLES" --out "$WORK/e"
grep -qF -- "--images" "$WORK/stderr" || fail "the --text/--images error does not name --images"
long=$(printf 'word %.0s' $(seq 1 80))
printf '%s\n' "a photo of a dog" "$long" >"$WORK/long.txt"
expect_error 2 "line 2" "$TV_EXTRACT" --model "$MODEL" --text "$WORK/long.txt" --out "$WORK/e"
[[ ! -e "$WORK/e" ]] || fail "a refused --text run wrote $WORK/e"
printf 'a\n\nb\n' >"$WORK/blank.txt"
expect_error 2 "line 2 is empty" "$TV_EXTRACT" --model "$MODEL" --text "$WORK/blank.txt" --out "$WORK/e"
expect_error 2 "--text: no such file" "$TV_EXTRACT" --model "$MODEL" --text "$WORK/none.txt" --out "$WORK/e"
expect_error 1 "$WORK/none.gz" "$TV_EXTRACT" --model "$MODEL" --text "$WORK/prompts.txt" --vocab "$WORK/none.gz" --out "$WORK/e"
expect_error 2 "--module" "$TV_EXTRACT" --model "$MODEL" --text "$WORK/prompts.txt" --module visual --out "$WORK/e"
# a text tower whose sidecar says it does not take CLIP's BPE (open_clip's SigLIP, XLM-RoBERTa, ...),
# or takes another number of tokens: one line naming the sidecar, nothing written
mkdir -p "$WORK/hf"
cp "$MODEL" "$WORK/hf/tower.pt"
"$TV_PYTHON" - "$WORK/model/clip_vit_b32_standin.json" "$WORK/hf/tower.json" "$WORK/hf/ctx.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
json.dump(dict(doc, tokenizer="unsupported", tokenizer_note="a Hugging Face tokenizer (xlm-roberta-base)"),
          open(sys.argv[2], "w"))
json.dump(dict(doc, tokenizer="clip_bpe", context_length=76), open(sys.argv[3], "w"))
PY
expect_error 1 "does not use CLIP's BPE tokenizer" "$TV_EXTRACT" --model "$WORK/hf/tower.pt" --text "$WORK/prompts.txt" --out "$WORK/hf/o"
grep -qF "$WORK/hf/tower.json" "$WORK/stderr" || fail "the tokenizer error does not name the sidecar"
grep -qF "xlm-roberta-base" "$WORK/stderr" || fail "the tokenizer error does not give the sidecar's note"
[[ ! -e "$WORK/hf/o" ]] || fail "a refused --text run wrote $WORK/hf/o"
mv "$WORK/hf/ctx.json" "$WORK/hf/tower.json"
expect_error 1 "takes 76 tokens per prompt" "$TV_EXTRACT" --model "$WORK/hf/tower.pt" --text "$WORK/prompts.txt" --out "$WORK/hf/o"
[[ ! -e "$WORK/hf/o" ]] || fail "a refused --text run wrote $WORK/hf/o"
# a model without encode_text
expect_error 1 "encode_text" "$TV_EXTRACT" --model "$TV_MODEL" --text "$WORK/prompts.txt" --out "$WORK/e"
echo "PASS text_features"
