#!/usr/bin/env bash
# Regenerates tests/data/ref/*: checkpoints and goldens from the reference harness in
# scripts/reference (DeepSeek's model.py driven by our scripts; see its README).
# Needs Debian's python3-numpy and python3-torch, and DSV3_REF_DIR pointing at a folder with
# DeepSeek-V3's inference/model.py (never copied into this project).
set -euo pipefail
: "${DSV3_REF_DIR:?set DSV3_REF_DIR to the folder holding DeepSeek-V3 inference/model.py}"
root="$(cd "$(dirname "$0")/.." && pwd)"
harness="${DSV3_HARNESS:-$root/scripts/reference}"
for dir in "$root"/tests/data/ref/*/; do
  name=$(basename "$dir")
  rm -f "$dir"/model-*.safetensors "$dir"/model.safetensors.index.json "$dir"/golden.*
  /usr/bin/python3 "$harness/make_ckpt.py" "$dir/config.json" "$dir" 11 1
  (cd "$root/tests/data/ref" && DSV3_REF_DIR="$DSV3_REF_DIR" /usr/bin/python3 "$harness/ref.py" "$name" "$name/prompts.json" "$name/golden" 12)
done
