#!/usr/bin/env python3
"""Decode speed of one process x T threads against W ranks x 1 thread (mpirun), alternated in
one run, medians over the rounds (docs/distributed.md, "Speed here"). Each measurement is
`dsv3 bench -p 16 -n N --repeat R` (the median of R decodes of one sequence); the load average
is printed next to each, as the machine may be shared.

  scripts/rank_speed.py --dsv3 build/dsv3 --model /tmp/moonlight-8l --rounds 3
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

MPIRUN = ["mpirun", "--oversubscribe", "--allow-run-as-root", "--mca", "btl", "tcp,self"]


def decode_tok_s(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"^decode:\s+\d+ tokens: ([0-9.]+) tok/s median", out, re.M)
    if not m:
        sys.exit("no decode line in:\n" + out)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsv3", default="build/dsv3")
    ap.add_argument("--model", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ranks", type=int, default=2, help="W ranks x 1 thread, against 1 process x W threads")
    ap.add_argument("--tokens", type=int, default=32, help="decoded tokens per bench run")
    ap.add_argument("--repeat", type=int, default=3, help="bench runs per measurement (their median)")
    ap.add_argument("--bind", default="none", help="mpirun --bind-to for the ranks (none; core pins each rank)")
    ap.add_argument("--transport", default="tcp,self", help="mpirun --mca btl (tcp,self; vader,self: shared memory)")
    a = ap.parse_args()
    bench = ["bench", "--model", a.model, "-p", "16", "-n", str(a.tokens), "--repeat", str(a.repeat), "--probe-gb", "0.01"]
    one = [a.dsv3] + bench + ["-t", str(a.ranks)]
    mpirun = [x if x != "tcp,self" else a.transport for x in MPIRUN]
    split = mpirun + ["--bind-to", a.bind, "-np", str(a.ranks), a.dsv3] + bench + ["-t", "1"]
    print(f"| round | 1 process x {a.ranks} threads | {a.ranks} ranks x 1 thread | ratio | load average (1 min) |")
    print("|---|---|---|---|---|")
    ones, splits = [], []
    for r in range(1, a.rounds + 1):
        load = os.getloadavg()[0]
        x = decode_tok_s(one)
        y = decode_tok_s(split)
        load = f"{load:.1f} -> {os.getloadavg()[0]:.1f}"
        ones.append(x)
        splits.append(y)
        print(f"| {r} | {x:.2f} tok/s | {y:.2f} tok/s | {y / x:.2f} | {load} |", flush=True)
    mx, my = statistics.median(ones), statistics.median(splits)
    print(f"| median | {mx:.2f} | {my:.2f} | {my / mx:.2f} | |")


if __name__ == "__main__":
    main()
