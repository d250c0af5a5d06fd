#!/usr/bin/env python3
"""Soak test of `dsv3 serve`: 16 clients for 10 minutes (by default) of mixed traffic.

Starts `dsv3 serve` on the built-in default model (or --model) with a small context, then each
client loops over a random mix of:
  - streaming chat completions read to `data: [DONE]`;
  - non-streaming chat and text completions;
  - streaming requests the client abandons mid-stream (closes the socket after a few chunks);
  - non-streaming requests the client cancels (closes the socket before the answer);
  - malformed requests from docs/BAD_INPUTS.md section D (each must get its 4xx);
  - completions at the context limit: a token-id prompt that fills the context exactly with
    max_tokens (200, finish_reason "length") and one a token over it (400
    context_length_exceeded).
Pass: no 5xx, no request without an answer within --request-timeout (a hang), every
well-formed request answered 200 with a complete body, every malformed one its 4xx, and the
server's resident memory at the end of the load within 5% of its level after the warm-up, both
taken under load as the median of the 5-second samples in a one-minute window (the minute after
the first --warmup seconds, and the last minute), so that one allocator high or low point decides
nothing; idle, once the clients stop, the server holds less: that figure is printed too. Prints
the figures and the memory over time, exits 1 on a failure.
"""

import argparse
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "soak-key"


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def start_server(args):
    cmd = [args.dsv3, "serve", "--port", "0", "-t", str(args.threads), "--ctx", str(args.ctx),
           "--api-key", KEY, "--max-batch", "16", "--max-queue", "64"]
    if args.model:
        cmd += ["--model", args.model]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    port = None
    for line in proc.stderr:
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            port = int(m.group(1))
        if "ready:" in line:
            break
    if port is None:
        proc.kill()
        raise SystemExit("soak: the server did not start: " + " ".join(cmd))
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, port


def raw_request(method, path, body=b"", headers=None, key=True):
    h = {"Host": "127.0.0.1", "Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + KEY
    if body or method == "POST":
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None) + "\r\n"
    return head.encode() + body


def read_status(sock):
    """The status code of the response on `sock`, and the rest of what the server sent."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before a status line")
        data += chunk
    return int(data.split(b" ", 2)[1]), data


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = Counter()
        self.failures = []

    def add(self, kind):
        with self.lock:
            self.counts[kind] += 1

    def fail(self, what):
        with self.lock:
            self.counts["failure"] += 1
            if len(self.failures) < 20:
                self.failures.append(what)


def chat_body(stream, max_tokens, rng):
    words = " ".join(rng.choice(["lighthouse", "keeper", "storm", "ship", "night", "lamp"]) for _ in range(rng.randint(1, 40)))
    return json.dumps({"messages": [{"role": "user", "content": words}], "max_tokens": max_tokens,
                       "stream": stream, "temperature": 0.8, "seed": rng.randint(0, 1 << 30)}).encode()


# Section D of docs/BAD_INPUTS.md: (id, request bytes, expected status)
def malformed_requests():
    msgs = [{"role": "user", "content": "hi"}]
    def chat(**kw):
        return raw_request("POST", "/v1/chat/completions", json.dumps(dict({"messages": msgs}, **kw)).encode())
    return [
        ("H01", raw_request("POST", "/v1/chat/completions", b'{"messages": [}'), 400),
        ("H02", raw_request("POST", "/v1/chat/completions", b"[1,2]"), 400),
        ("H03", raw_request("POST", "/v1/chat/completions", b""), 400),
        ("H04", raw_request("POST", "/v1/chat/completions", b"{}", {"Content-Type": "text/plain"}), 415),
        ("H07", raw_request("POST", "/v1/chat/completions", b'{"messages": [{"role": 123}]}'), 400),
        ("H08", raw_request("POST", "/v1/chat/completions", b'{"messages": [{"role": "wizard", "content": "x"}]}'), 400),
        ("H11", chat(max_tokens=-1), 400),
        ("H14", chat(temperature="hot"), 400),
        ("H15", chat(top_p=1.5), 400),
        ("H16", chat(n=10**6), 400),
        ("H18", chat(stop=["x"] * 1000), 400),
        ("H23", chat(seed=1.5), 400),
        ("H24", chat(top_logprobs=50, logprobs=True), 400),
        ("H26", chat(logit_bias={"x": 1}), 400),
        ("H28", chat(presence_penalty=3), 400),
        ("H34", raw_request("POST", "/v1/chat/completions", b'{"messages": ' + b"[" * 10000 + b"]" * 10000 + b"}"), 400),
        ("H35", raw_request("POST", "/v1/chat/completions", json.dumps({"messages": msgs}).encode(), key=False), 401),
        ("H36", raw_request("GET", "/v1/chat/completions"), 405),
        ("H37", raw_request("GET", "/v1/%2e%2e/etc/passwd"), 404),
    ]


def client(port, args, deadline, stats, seed):
    rng = random.Random(seed)
    bad = malformed_requests()
    ctx = args.ctx

    def json_exchange(path, body):
        """A well-formed request through http.client (which checks the framing, chunked or not)."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=args.request_timeout)
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json", "Authorization": "Bearer " + KEY})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def one_exchange(req, expect, complete_check=None):
        s = socket.create_connection(("127.0.0.1", port), timeout=args.request_timeout)
        try:
            s.sendall(req)
            status, data = read_status(s)
            while True:
                if complete_check and complete_check(data):
                    break
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return status, data
        finally:
            s.close()

    while time.time() < deadline:
        kind = rng.choices(["stream", "plain", "completion", "abandon", "cancel", "malformed", "ctx_fit", "ctx_over"],
                           weights=[4, 3, 2, 2, 2, 3, 1, 1])[0]
        try:
            if kind == "stream":
                req = raw_request("POST", "/v1/chat/completions", chat_body(True, rng.randint(1, 24), rng), {"Connection": "close"})
                status, data = one_exchange(req, 200, lambda d: b"data: [DONE]" in d)
                if status != 200 or b"data: [DONE]" not in data:
                    stats.fail(f"stream: {status} {data[:200]!r}")
                    continue
            elif kind in ("plain", "completion"):
                if kind == "plain":
                    status, data = json_exchange("/v1/chat/completions", chat_body(False, rng.randint(1, 24), rng))
                else:
                    body = json.dumps({"prompt": "The keeper of the lamp", "max_tokens": rng.randint(1, 24), "n": rng.randint(1, 3)}).encode()
                    status, data = json_exchange("/v1/completions", body)
                if status != 200 or "choices" not in json.loads(data):
                    stats.fail(f"{kind}: {status} {data[:200]!r}")
                    continue
            elif kind == "abandon":
                s = socket.create_connection(("127.0.0.1", port), timeout=args.request_timeout)
                s.sendall(raw_request("POST", "/v1/chat/completions", chat_body(True, 200, rng)))
                status, data = read_status(s)
                while data.count(b"data: ") < rng.randint(1, 4) and b"[DONE]" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if rng.random() < 0.5:  # a reset rather than an orderly close
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
                if status != 200:
                    stats.fail(f"abandon: {status}")
                    continue
            elif kind == "cancel":
                s = socket.create_connection(("127.0.0.1", port), timeout=args.request_timeout)
                s.sendall(raw_request("POST", "/v1/chat/completions", chat_body(False, 200, rng)))
                time.sleep(rng.uniform(0.0, 0.3))
                s.close()
            elif kind == "malformed":
                case, req, expect = rng.choice(bad)
                status, data = one_exchange(req + b"", expect, lambda d: b"\r\n\r\n" in d and (b"}\n" in d or d.endswith(b"}")))
                if status != expect:
                    stats.fail(f"{case}: expected {expect}, got {status} {data[:200]!r}")
                    continue
                kind = "malformed " + case
            else:
                # Token ids 1000..: plain text tokens. The prompt plus max_tokens fills the context
                # exactly (ctx_fit) or passes it by one (ctx_over).
                max_tokens = rng.randint(1, 8)
                length = ctx - max_tokens + (1 if kind == "ctx_over" else 0)
                body = json.dumps({"prompt": [1000 + (i % 500) for i in range(length)], "max_tokens": max_tokens,
                                   "ignore_eos": True}).encode()
                status, data = json_exchange("/v1/completions", body)
                want = 200 if kind == "ctx_fit" else 400
                if status != want or (want == 400 and b"context_length_exceeded" not in data):
                    stats.fail(f"{kind}: expected {want}, got {status} {data[:200]!r}")
                    continue
            stats.add(kind)
        except socket.timeout:
            stats.add("hang")
            stats.fail(f"{kind}: no answer within {args.request_timeout} s")
        except (ConnectionError, OSError, ValueError, http.client.HTTPException) as e:
            stats.fail(f"{kind}: {type(e).__name__}: {e}")


def window_median(samples, t0, t1):
    """Median RSS (kB) of the (time, kB) samples taken in [t0, t1); None when there are none."""
    inside = sorted(kb for t, kb in samples if t0 <= t < t1)
    return inside[len(inside) // 2] if inside else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsv3", default=os.path.join(ROOT, "build", "dsv3"))
    ap.add_argument("--model", default="")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="the server's worker threads")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--request-timeout", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    proc, port = start_server(args)
    stats = Stats()
    start = time.time()
    deadline = start + args.seconds
    threads = [threading.Thread(target=client, args=(port, args, deadline, stats, args.seed * 1000 + i), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    samples = []
    warm_fds = None
    while time.time() < deadline:
        time.sleep(5)
        if proc.poll() is not None:
            stats.fail(f"the server exited with {proc.returncode}")
            break
        samples.append((time.time() - start, rss_kb(proc.pid)))
        if warm_fds is None and time.time() - start >= args.warmup:
            warm_fds = open_fds(proc.pid)
    end_of_load = samples[-1][0] if samples else 0
    warm_rss = window_median(samples, args.warmup, args.warmup + 60)
    load_rss = window_median(samples, end_of_load - 60, end_of_load + 1) or -1
    for t in threads:
        t.join(args.request_timeout + 5)
    stuck = sum(t.is_alive() for t in threads)
    time.sleep(2)  # let cancelled work finish
    alive = proc.poll() is None
    end_rss = rss_kb(proc.pid) if alive else -1
    end_fds = open_fds(proc.pid) if alive else -1
    peak = rss_kb(proc.pid, "VmHWM") if alive else -1
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()

    c = stats.counts
    answered = sum(v for k, v in c.items() if k not in ("failure", "hang"))
    print(f"soak: {args.clients} clients, {time.time() - start:.0f} s, server -t {args.threads} --ctx {args.ctx}")
    for k in sorted(c):
        print(f"  {k:24s} {c[k]}")
    print(f"  requests completed       {answered}")
    drift = (load_rss - warm_rss) / warm_rss * 100 if warm_rss and load_rss > 0 else float("nan")
    idle_drift = (end_rss - warm_rss) / warm_rss * 100 if warm_rss and end_rss > 0 else float("nan")
    print(f"  RSS after warm-up        {warm_rss / 1024 if warm_rss else float('nan'):.1f} MiB "
          f"(median of {args.warmup:.0f}-{args.warmup + 60:.0f} s, under load)")
    print(f"  RSS at the end of load   {load_rss / 1024:.1f} MiB ({drift:+.2f}%, median of the last minute)")
    print("  RSS each minute (MiB)    " + " ".join(f"{kb / 1024:.0f}" for t, kb in samples if int(t) % 60 < 5))
    print(f"  RSS idle after           {end_rss / 1024:.1f} MiB ({idle_drift:+.2f}%), peak {peak / 1024:.1f} MiB")
    print(f"  open fds                 {warm_fds} after warm-up, {end_fds} at the end")
    print(f"  client threads stuck     {stuck}")
    for f in stats.failures:
        print("  FAIL", f)
    ok = alive and not stats.failures and stuck == 0 and warm_rss and abs(drift) <= 5.0
    print("soak: PASS" if ok else "soak: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
