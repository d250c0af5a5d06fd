#!/usr/bin/env python3
"""Runs llama.cpp's convert_hf_to_gguf.py on Debian, for the side-by-side benchmarks
(docs/benchmarks.md). llama.cpp itself is not part of this project: LLAMA_CPP points at a
checkout of it (from the npm package node-llama-cpp, see the docs).

usage: LLAMA_CPP=<llama.cpp source> /usr/bin/python3 scripts/llamacpp/convert.py MODEL_DIR --outtype q8_0 --outfile OUT.gguf

What it supplies that Debian lacks:
- `transformers`: a stand-in (stand_in/transformers) for the two calls the converter makes,
  the config as a dict and the tokenizer's vocabulary and added tokens;
- torch 1.13 has no float8 dtypes, which the converter only names: stand-in attributes;
- the BPE pre-tokenizer's name, which the converter finds by hashing a real tokenizer's
  output: DeepSeek-V3's is "deepseek-v3".
MODEL_DIR must hold BF16 weights (`dsv3 convert --to bf16`), tokenizer.json and
tokenizer_config.json, and a config.json whose q_lora_rank is a number (0 where null).
"""
import os
import runpy
import sys

here = os.path.dirname(os.path.abspath(__file__))
src = os.environ.get("LLAMA_CPP")
if not src or not os.path.exists(os.path.join(src, "convert_hf_to_gguf.py")):
    sys.exit("set LLAMA_CPP to a llama.cpp source folder (holding convert_hf_to_gguf.py)")
sys.path.insert(0, os.path.join(here, "stand_in"))
import torch  # noqa: E402

for name in ("float8_e4m3fn", "float8_e5m2"):
    if not hasattr(torch, name):
        setattr(torch, name, type(name, (), {})())  # a distinct object no tensor's dtype equals
sys.path.insert(0, src)
sys.path.insert(0, os.path.join(src, "gguf-py"))
import conversion.base as base  # noqa: E402

base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "deepseek-v3"
sys.argv = [os.path.join(src, "convert_hf_to_gguf.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
