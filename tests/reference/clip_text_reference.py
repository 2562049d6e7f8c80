#!/usr/bin/python3
"""Reference CLIP text features for tests/cli/text_features_test.sh: model.encode_text in Python.

Usage: /usr/bin/python3 clip_text_reference.py MODEL.pt PROMPTS.txt VOCABULARY.txt.gz CASES.jsonl OUT.npy

Each line of PROMPTS.txt is one prompt. Its token ids are OpenAI's ids from CASES.jsonl when the
prompt is one of its texts, else those of clip_tokenizer_reference.py (which must agree with
CASES.jsonl on every case it shares with PROMPTS.txt). The ids, zero padded to 77, go through
torch.jit.load(MODEL).encode_text; the float32 result (one row per prompt) is saved to OUT.npy.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_tokenizer_reference as ref  # noqa: E402


def main():
    model_file, prompts_file, vocabulary, cases_file, out = sys.argv[1:6]
    with open(cases_file, encoding="utf-8") as f:
        cases = {c["text"]: c["ids"] for c in map(json.loads, f)}
    rows = ref.prompt_rows(prompts_file, ref.Tokenizer(vocabulary), cases)
    model = torch.jit.load(model_file, map_location="cpu").eval()
    with torch.no_grad():
        features = model.encode_text(torch.tensor(rows, dtype=torch.long))
    np.save(out, features.float().numpy())


if __name__ == "__main__":
    main()
