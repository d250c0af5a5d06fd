#!/usr/bin/env python3
"""Peak resident memory per rank of a split model against what `dsv3 inspect --ranks W`
predicts (docs/distributed.md, "Files and memory per rank").

For each W: inspect's resident bytes per rank, then `dsv3 bench -p 256 -n 0 --repeat 1 -t 1
--probe-gb 0.01` (a prompt long enough to route to every expert, so every weight a rank holds is
read; a 10 MB bandwidth probe) in one process (W = 1) or under `mpirun -np W`, each rank's peak
RSS taken from the kernel (getrusage of the rank's process, through this script run as a
wrapper around it).

  scripts/rank_memory.py --dsv3 build/dsv3 --model /tmp/moonlight-8l --worlds 1 2 4
"""
import argparse
import os
import re
import resource
import subprocess
import sys

MPIRUN = ["mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "--mca", "btl", "tcp,self"]
TAG = "rank_memory: rank {rank} peak_rss_bytes {bytes}"


def child(argv):
    """Runs argv (one rank's dsv3) and prints its peak RSS."""
    code = subprocess.run(argv).returncode
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
    print(TAG.format(rank=os.environ.get("OMPI_COMM_WORLD_RANK", "0"), bytes=peak), flush=True)
    return code


def predicted(dsv3, model, world):
    out = subprocess.run([dsv3, "inspect", "--model", model, "--ranks", str(world)], check=True,
                         capture_output=True, text=True).stdout
    return [float(gb) * 1e9 for gb in re.findall(r"^rank \d+: .*resident ([0-9.]+) GB", out, re.M)]


def measured(dsv3, model, world, prompt):
    # A small bandwidth probe: its buffer (1 GiB by default, on rank 0) is not the model's.
    bench = [dsv3, "bench", "--model", model, "-p", str(prompt), "-n", "0", "--repeat", "1", "-t", "1", "--probe-gb", "0.01"]
    wrapper = [sys.executable, os.path.abspath(__file__), "--child", "--"] + bench
    cmd = wrapper if world == 1 else MPIRUN + ["-np", str(world)] + wrapper
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    peaks = {int(r): int(b) for r, b in re.findall(r"rank_memory: rank (\d+) peak_rss_bytes (\d+)", out)}
    return [peaks[r] for r in range(world)]


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsv3", default="build/dsv3")
    ap.add_argument("--model", required=True)
    ap.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--prompt", type=int, default=256, help="prompt tokens of the bench run")
    a = ap.parse_args()
    print("| W | inspect --ranks: resident per rank | peak RSS per rank (measured) | difference |")
    print("|---|---|---|---|")
    worst = 0.0
    for w in a.worlds:
        want, got = predicted(a.dsv3, a.model, w), measured(a.dsv3, a.model, w, a.prompt)
        diffs = [(g - p) / p for g, p in zip(got, want)]
        worst = max(worst, max(abs(d) for d in diffs))
        print(f"| {w} | {', '.join(f'{p / 1e9:.3f}' for p in want)} GB | {', '.join(f'{g / 1e9:.3f}' for g in got)} GB | "
              f"{', '.join(f'{d * 100:+.1f}%' for d in diffs)} |", flush=True)
    print(f"largest difference: {worst * 100:.1f}% ({'within' if worst <= 0.10 else 'beyond'} 10%)")
    return 0 if worst <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
