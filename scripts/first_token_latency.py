#!/usr/bin/env python3
"""Time to first token of a short chat prompt, one client, against OpenAI-compatible servers.

Each run sends one streamed /v1/chat/completions request and times, on the client, from the
request's first byte to the first streamed event that carries generated text (or ends the
answer). The servers are taken in turn run after run, so that they share the machine's state;
every run's prompt starts with its own words, so that no server can answer from a prompt
cache. Prints each run and the medians.

    scripts/first_token_latency.py --runs 7 dsv3=http://127.0.0.1:8123 llama=http://127.0.0.1:8124
"""
import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse

WORDS = ["amber", "basil", "cedar", "delta", "ember", "fjord", "grove", "heron", "iris", "jade", "kelp",
         "lumen", "maple", "nectar", "onyx", "pearl", "quartz", "raven", "sage", "tundra"]


def prompt(run):
    # About 20 tokens through DeepSeek-V3's chat template; the first word differs every run.
    return f"{WORDS[run % len(WORDS)]} {run}: name three rivers in Europe and the sea that each one flows into."


def served_model(base):
    """The first model id of GET /v1/models."""
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("GET", "/v1/models")
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"{base}/v1/models: HTTP {resp.status}")
    return json.loads(resp.read())["data"][0]["id"]


def first_token_ms(base, model, run, max_tokens):
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    body = json.dumps({"model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0,
                       "messages": [{"role": "user", "content": prompt(run)}]})
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"{base}: HTTP {resp.status}: {resp.read()[:200]!r}")
    elapsed = None
    for raw in resp:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        event = json.loads(data)
        for choice in event.get("choices", []):
            delta = choice.get("delta", {})
            if elapsed is None and (delta.get("content") or delta.get("reasoning_content") or choice.get("finish_reason")):
                elapsed = (time.perf_counter() - start) * 1000.0
    conn.close()
    if elapsed is None:
        raise SystemExit(f"{base}: the stream ended without a token")
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("servers", nargs="+", help="NAME=URL, e.g. dsv3=http://127.0.0.1:8123")
    ap.add_argument("--runs", type=int, default=7, help="runs per server after the first one, a warm-up that is printed but not counted (0: only that one)")
    ap.add_argument("--max-tokens", type=int, default=4)
    args = ap.parse_args()
    servers = [s.split("=", 1) for s in args.servers]
    if any(len(s) != 2 for s in servers):
        raise SystemExit("each server is NAME=URL")
    times = {name: [] for name, _ in servers}
    models = {name: served_model(url) for name, url in servers}
    for run in range(args.runs + 1):
        for name, url in servers:
            ms = first_token_ms(url, models[name], run, args.max_tokens)
            if run > 0:
                times[name].append(ms)
            print(f"run {run}{' (warm-up)' if run == 0 else ''}: {name} {ms:.1f} ms", flush=True)
    for name, t in times.items():
        if not t:  # --runs 0: only the first request of each server, e.g. a freshly started one
            continue
        print(f"{name}: median {statistics.median(t):.1f} ms (min {min(t):.1f}, max {max(t):.1f}) over {len(t)} runs")


if __name__ == "__main__":
    sys.exit(main())
