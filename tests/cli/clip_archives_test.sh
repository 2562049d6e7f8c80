#!/bin/bash
# OpenAI's CLIP archives as clip.load downloads them, without a sidecar: stand-ins for all nine
# (tests/reference/make_clip_archives.py: traced, float16 weights, "cuda" constants, root
# input_resolution tensor or only the positional embedding) extract with the README's commands:
# encode_image at the archive's own resolution with CLIP's preprocessing, a module inside the
# vision tower (sequence-first blocks returned batch-first), and --text through encode_text; each
# against the eager model with clip.py's official preprocessing. --entry-method and --preset
# override; forward(image, text) asked for explicitly is a clear error.
source "$(dirname "$0")/common.sh"
VOCAB="$TV_SOURCE_DIR/data/clip/bpe_simple_vocab_16e6.txt.gz"
printf '%s\n' "a photo of a cat." "a diagram of a neuron, drawn in ink" "naïve café résumé" >"$WORK/prompts.txt"
"$TV_PYTHON" "$TV_SOURCE_DIR/tests/reference/make_clip_archives.py" "$WORK/clip" "$EXAMPLES" \
  "$WORK/prompts.txt" "$VOCAB" >/dev/null 2>"$WORK/make.log" || { cat "$WORK/make.log" >&2; fail "stand-ins"; }
[[ ! -e "$WORK/clip/ViT-B-32.json" ]] || fail "a stand-in has a sidecar"

# check NAME OUT KIND MODULE: OUT/MODULE/features.npy equals the reference KIND (image, module, text)
check() {
  "$TV_PYTHON" - "$WORK/clip" "$@" <<'PY' || fail "features differ from the reference: $*"
import json, sys
import numpy as np
clip, name, out, kind, module = sys.argv[1:6]
ref = np.load(f"{clip}/{name}.{kind}.npy").astype(np.float64)
got = np.load(f"{out}/{module}/features.npy").astype(np.float64)
if kind != "text":
    assert open(f"{out}/file_names.txt").read().split("\n")[:-1] == json.load(open(f"{clip}/index.json"))["images"]
assert got.shape == ref.shape, (got.shape, ref.shape)
diff = float(np.abs(got - ref).max() / np.abs(ref).max())
assert diff <= 1e-5, f"{name} {module}: max difference {diff:.3g} of the largest value"
PY
}
manifest() {  # manifest OUT KEY: prints manifest.json's KEY
  "$TV_PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1] + "/manifest.json"))[sys.argv[2]])' "$1/" "$2"
}

for name in RN50 RN101 RN50x4 RN50x16 RN50x64 ViT-B-32 ViT-B-16 ViT-L-14 ViT-L-14-336px; do
  read -r resolution module < <("$TV_PYTHON" -c 'import json, sys
a = json.load(open(sys.argv[1]))["archives"][sys.argv[2]]; print(a["resolution"], a["module"])' "$WORK/clip/index.json" "$name")
  out="$WORK/out-$name"
  expect_status 0 "$TV_EXTRACT" --model "$WORK/clip/$name.pt" --images "$EXAMPLES" --module visual \
    --module "$module" --out "$out" --threads 2
  grep -qF "'$name.pt' is a CLIP archive without a sidecar" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "$name: no notice"; }
  [[ $(grep -c "CLIP archive" "$WORK/stderr") == 1 ]] || fail "$name: the notice is not said once"
  grep -qF "preset clip at $resolution px" "$WORK/stderr" || fail "$name: not preprocessed at $resolution px"
  check "$name" "$out" image visual
  check "$name" "$out" module "$module"
  [[ $(manifest "$out" entry_method) == encode_image ]] || fail "$name: manifest entry_method"
  [[ $(manifest "$out" preprocessing) == *"center crop ${resolution}x$resolution"* ]] || fail "$name: manifest preprocessing"
done

# --text on an archive whose forward needs images and text: encode_text, summary says "texts"
for name in ViT-B-32 RN50x4; do
  expect_status 0 "$TV_EXTRACT" --model "$WORK/clip/$name.pt" --text "$WORK/prompts.txt" --out "$WORK/text-$name"
  check "$name" "$WORK/text-$name" text encode_text
  grep -qF "extracted 3 texts" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "summary does not count texts"; }
  ! grep -q "images" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "a text run's summary speaks of images"; }
done

# The README's image command (--preset clip on a 224 px archive) equals the automatic choice.
expect_status 0 "$TV_EXTRACT" --model "$WORK/clip/ViT-B-32.pt" --preset clip --module visual \
  --images "$EXAMPLES" --out "$WORK/readme" --quiet
check ViT-B-32 "$WORK/readme" image visual
# --entry-method encode_image: the same features, no notice (nothing was guessed)
expect_status 0 "$TV_EXTRACT" --model "$WORK/clip/RN50.pt" --entry-method encode_image --module visual \
  --images "$EXAMPLES" --out "$WORK/explicit"
check RN50 "$WORK/explicit" image visual
! grep -q "CLIP archive without a sidecar" "$WORK/stderr" || fail "--entry-method still gave the notice"
# the check can fail: another preprocessing (--preset thingsvision) gives other features
expect_status 0 "$TV_EXTRACT" --model "$WORK/clip/RN50.pt" --preset thingsvision --module visual \
  --images "$EXAMPLES" --out "$WORK/other" --quiet
if (check RN50 "$WORK/other" image visual) 2>/dev/null; then fail "ImageNet preprocessing matched CLIP's reference"; fi
[[ $(manifest "$WORK/other" preprocessing_source) == "preset thingsvision" ]] || fail "--preset did not override"
# forward(image, text) asked for by name: one line naming the argument and the way out
expect_error 1 "encode_image" "$TV_EXTRACT" --model "$WORK/clip/RN50.pt" --entry-method forward --module visual \
  --images "$EXAMPLES" --out "$WORK/e"
grep -qF "'text'" "$WORK/stderr" || fail "the forward error does not name argument 'text'"
expect_error 1 "no method 'encode_img'" "$TV_EXTRACT" --model "$WORK/clip/RN50.pt" --entry-method encode_img \
  --module visual --images "$EXAMPLES" --out "$WORK/e"
[[ ! -e "$WORK/e" ]] || fail "a refused run wrote $WORK/e"
# --list-modules of a 448 px archive shows the shapes at 448 px (ModifiedResNet: 448 / 4 = 112)
expect_status 0 "$TV_EXTRACT" --model "$WORK/clip/RN50x64.pt" --list-modules
grep -qP '^visual\.layer1\t\S+\t\(32, 112, 112\)$' "$WORK/stdout" || { grep layer1 "$WORK/stdout" >&2; fail "--list-modules shapes"; }
echo "PASS clip_archives"
