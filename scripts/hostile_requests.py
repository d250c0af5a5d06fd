#!/usr/bin/env python3
"""Hostile requests against `dsv3 serve`: each case of docs/reliability.md, measured.

Starts the servers it needs (the built-in default model unless --model), sends each case over
raw sockets and prints one Markdown row per case: the status (or what happened), the time to
the answer, and the server's peak resident memory during the case (VmHWM, reset before each
case through /proc/PID/clear_refs, which needs the same user or root).

  scripts/hostile_requests.py --dsv3 build/dsv3 [--only chunked,headers] [--json out.json]

Cases that send hundreds of MiB take a few seconds each; the whole run takes about a minute
plus the server starts.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

KEY = "k"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------
# Servers


class Server:
    def __init__(self, dsv3, args, label, probe=None):
        self.label = label
        if probe:  # another HTTP server (scripts/probes): prints "port N" on stdout
            cmd = probe.split()
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.port = int(re.search(r"port (\d+)", self.proc.stdout.readline()).group(1))
            return
        cmd = [dsv3, "serve", "--port", "0", "-t", "1"] + args
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.port = None
        deadline = time.time() + 120
        for line in self.proc.stderr:
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if "ready:" in line:
                break
            if time.time() > deadline:
                break
        if self.port is None:
            raise RuntimeError("server did not start: " + " ".join(cmd))
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def alive(self):
        return self.proc.poll() is None

    def rss_mb(self, field="VmRSS"):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            return float("nan")
        return float("nan")

    def reset_peak(self):
        try:
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------------------------------------
# Raw HTTP


def exchange(port, parts, timeout=30.0, responses=1):
    """Sends `parts` (bytes, or an iterable of bytes) on a new connection while another thread
    reads until `responses` answers are complete. Returns (status or None, seconds to the first
    answer byte, answer bytes, how much of the request was sent)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    got = bytearray()
    first = [None]
    t0 = time.time()
    done = threading.Event()

    def reader():
        s.settimeout(timeout)
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                if first[0] is None:
                    first[0] = time.time() - t0
                got.extend(b)
                if complete(got, responses):
                    break
        except OSError:
            pass
        done.set()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    sent = 0
    if isinstance(parts, (bytes, bytearray)):
        parts = [parts]
    try:
        for p in parts:
            if done.is_set():
                break
            s.sendall(p)
            sent += len(p)
    except OSError:
        pass
    done.wait(timeout)
    try:
        s.close()
    except OSError:
        pass
    status = None
    m = re.match(rb"HTTP/1\.[01] (\d{3})", bytes(got))
    if m:
        status = int(m.group(1))
    return status, first[0], bytes(got), sent


def complete(buf, responses=1):
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = bytes(buf[:head_end]).lower()
    if head.startswith(b"http/1.1 100"):
        return complete(buf[head_end + 4:], responses)
    m = re.search(rb"content-length: *(\d+)", head)
    if m:
        end = head_end + 4 + int(m.group(1))
        return len(buf) >= end and (responses == 1 or complete(buf[end:], responses - 1))
    if b"chunked" in head:
        return buf.endswith(b"0\r\n\r\n")
    return False


def request(method, path, body=b"", headers=(), key=True, length=True):
    lines = [f"{method} {path} HTTP/1.1", "Host: x"]
    if key:
        lines.append(f"Authorization: Bearer {KEY}")
    if body and length:
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked_body(prefix, filler_bytes, suffix, chunk=1 << 20):
    yield prefix
    left = filler_bytes
    block = b"x" * chunk
    while left > 0:
        n = min(chunk, left)
        yield b"%x\r\n" % n + block[:n] + b"\r\n"
        left -= n
    yield suffix


def chat_body(messages, **extra):
    body = {"model": "dsv3-default", "messages": messages, "max_tokens": 1}
    body.update(extra)
    return json.dumps(body).encode()


# ---------------------------------------------------------------------------------------------
# Cases: each returns (what came back, notes); the runner adds the time and the peak memory.


def big_chunked(port, mib, key):
    # {"messages":[...],"max_tokens":1,"user":"xxxx..."} as chunked encoding.
    head = chat_body([{"role": "user", "content": "hi"}])[:-1] + b',"user":"'
    lines = ["POST /v1/chat/completions HTTP/1.1", "Host: x", "Content-Type: application/json",
             "Transfer-Encoding: chunked"]
    if key:
        lines.append(f"Authorization: Bearer {KEY}")
    start = ("\r\n".join(lines) + "\r\n\r\n").encode() + b"%x\r\n" % len(head) + head + b"\r\n"
    end = b'2\r\n"}\r\n0\r\n\r\n'
    r = exchange(port, chunked_body(start, mib << 20, end), timeout=120)
    return r, f"{r[3] >> 20} MiB sent"


def case_chunked_nokey(srv):
    return big_chunked(srv.port, 128, key=False)


def case_chunked_key(srv):
    return big_chunked(srv.port, 256, key=True)


def case_headers(srv):
    start = b"GET /health HTTP/1.1\r\nHost: x\r\n"

    def parts():
        yield start
        block = b"X-a: b\r\n" * 10000
        for _ in range(200):  # 2M headers
            yield block
        yield b"\r\n"

    r = exchange(srv.port, parts(), timeout=60)
    return r, f"{r[3] >> 20} MiB sent"


def system_messages(count, chars=190):
    return [{"role": "system", "content": ("s%05d " % i + "x" * chars)[:chars]} for i in range(count)]


def case_system_18k(srv):
    r = exchange(srv.port, request("POST", "/v1/chat/completions", chat_body(system_messages(18000) + [{"role": "user", "content": "hi"}])), timeout=120)
    return r, ""


def case_system_36k(srv):
    r = exchange(srv.port, request("POST", "/v1/chat/completions", chat_body(system_messages(36000) + [{"role": "user", "content": "hi"}])), timeout=120)
    return r, ""


def assistant_case(content):
    def run(srv):
        body = chat_body([{"role": "user", "content": "hi"}, {"role": "assistant", "content": content},
                          {"role": "user", "content": "and?"}])
        r = exchange(srv.port, request("POST", "/v1/chat/completions", body))
        note = ""
        try:
            j = json.loads(r[2].split(b"\r\n\r\n", 1)[1])
            note = f"prompt_tokens {j['usage']['prompt_tokens']}" if "usage" in j else j["error"]["message"][:60]
        except Exception:
            pass
        return r, note
    return run


def case_n128(srv):
    body = chat_body([{"role": "user", "content": "hi"}], n=128)
    r = exchange(srv.port, request("POST", "/v1/chat/completions", body))
    return r, ""


def case_n_interference(srv):
    # Client A sends n=128 twenty times a second; client B's plain requests count their 429s.
    stop = threading.Event()

    def client_a():
        body = request("POST", "/v1/chat/completions", chat_body([{"role": "user", "content": "hi"}], n=128))
        while not stop.is_set():
            exchange(srv.port, body, timeout=5)
            time.sleep(0.05)

    a = threading.Thread(target=client_a, daemon=True)
    a.start()
    b_body = request("POST", "/v1/completions", json.dumps({"prompt": "hi", "max_tokens": 1}).encode())
    statuses = []
    t_end = time.time() + 5
    while time.time() < t_end:
        statuses.append(exchange(srv.port, b_body, timeout=10)[0])
    stop.set()
    a.join()
    refused = sum(1 for s in statuses if s == 429)
    r = (statuses[-1], None, b"", 0)
    return r, f"B: {refused} of {len(statuses)} got 429"


def case_template(srv):
    r = exchange(srv.port, request("POST", "/v1/chat/completions", chat_body([{"role": "user", "content": "hi"}])), timeout=120)
    note = ""
    try:
        note = json.loads(r[2].split(b"\r\n\r\n", 1)[1])["error"]["message"][:70]
    except Exception:
        pass
    return r, note


def case_te_and_cl(srv):
    body = b'{"prompt":"hi","max_tokens":1}'
    raw = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\n"
           b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    return exchange(srv.port, raw, timeout=5), ""


def case_two_lengths(srv):
    body = b'{"prompt":"hi","max_tokens":1}'
    raw = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n" % len(body) + body)
    return exchange(srv.port, raw, timeout=5), ""


def method_case(method, path):
    def run(srv):
        return exchange(srv.port, request(method, path, headers=["Connection: close"]), timeout=5), ""
    return run


def case_huge_length(srv):
    raw = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\n"
           b"Content-Length: 100000000\r\n\r\n{\"prompt\":")
    return exchange(srv.port, raw, timeout=30), "headers and 10 bytes sent"


def case_memory(srv):
    # 20 requests of 4 MiB each (a chat whose content is refused for the context after
    # tokenizing), then idle: RSS before, at the end, and 2 s later.
    before = srv.rss_mb()
    body = chat_body([{"role": "user", "content": "word " * ((4 << 20) // 5 - 40)}])
    r = None
    for _ in range(20):
        r = exchange(srv.port, request("POST", "/v1/chat/completions", body), timeout=60)
    time.sleep(2)
    return r, f"RSS {before:.0f} MB before, {srv.rss_mb():.0f} MB 2 s after"


def case_memory_messages(srv):
    # 10 requests of 20,000 short messages each (rendered until the template's budget stops
    # them): many small allocations instead of one large one.
    before = srv.rss_mb()
    body = chat_body([{"role": "user" if i % 2 else "system", "content": "m%05d" % i + " words" * 18}
                      for i in range(20000)])
    r = None
    for _ in range(10):
        r = exchange(srv.port, request("POST", "/v1/chat/completions", body), timeout=120)
    time.sleep(2)
    return r, f"RSS {before:.0f} MB before, {srv.rss_mb():.0f} MB 2 s after"


def review_case(raw):
    def run(srv):
        return exchange(srv.port, raw, timeout=5), ""
    return run


def case_pipelined(srv):
    one = request("GET", "/health", key=False)
    r = exchange(srv.port, one + one, timeout=3, responses=2)
    n = r[2].count(b"HTTP/1.1 200")
    return r, f"{n} of 2 answered"


def case_slow_clients(srv):
    # 200 connections that trickle a header byte a second for 12 s, then /health.
    socks = []
    for _ in range(200):
        try:
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            break
    t_end = time.time() + 12
    alive = len(socks)
    while time.time() < t_end:
        alive = 0
        for s in socks:
            try:
                s.sendall(b"X")
                alive += 1
            except OSError:
                pass
        time.sleep(1)
    r = exchange(srv.port, request("GET", "/health", key=False, headers=["Connection: close"]), timeout=5)
    for s in socks:
        s.close()
    return r, f"{alive} of {len(socks)} trickling connections still open after 12 s"


def cli_case(args):
    def run(dsv3):
        t0 = time.time()
        p = subprocess.run([dsv3] + args, capture_output=True, text=True, timeout=120)
        lines = [l for l in p.stderr.strip().splitlines() if not l.startswith("dsv3: no --model given")]
        msg = (lines or [""])[0][:70]
        return p.returncode, time.time() - t0, msg
    return run


# ---------------------------------------------------------------------------------------------


def hostile_tokenizer(name, template):
    d = os.path.join(tempfile.gettempdir(), "dsv3-hostile-" + name)
    os.makedirs(d, exist_ok=True)
    src = os.path.join(ROOT, "assets", "deepseek-v3-tokenizer")
    shutil.copy(os.path.join(src, "tokenizer.json"), d)
    with open(os.path.join(src, "tokenizer_config.json")) as f:
        cfg = json.load(f)
    cfg["chat_template"] = template
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f)
    return d


TEMPLATES = {
    "double_string": "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "double_list": "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}",
    "chained_replace": "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(12) %}{% set ns.s = ns.s.replace('x', 'xxxxxxxx') %}{% endfor %}{{ ns.s|length }}",
    "join_million": "{{ range(1000000)|join(',' * 1000)|length }}",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv3", default=os.path.join(ROOT, "build", "dsv3"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--rss-cap", type=int, default=4096, help="kill a server past this many MB (a shared machine)")
    ap.add_argument("--probe", default="", help="a command starting another HTTP server (scripts/probes): "
                    "runs the HTTP cases (1, 2, 7, R, H) against it")
    a = ap.parse_args()
    only = [s for s in a.only.split(",") if s]
    base = ["--api-key", KEY] + (["--model", a.model] if a.model else [])

    # (id, server args, case) in the order of docs/reliability.md.
    cases = [
        ("1 chunked 128 MiB, no key", [], case_chunked_nokey),
        ("1 chunked 256 MiB, with key", [], case_chunked_key),
        ("2 2M headers", [], case_headers),
        ("3 18,000 system messages (ctx 16384)", [], case_system_18k),
        ("3 18,000 system messages (ctx 163840)", ["--ctx", "163840"], case_system_18k),
        ("3 36,000 system messages (ctx 163840, 8 MiB bodies)", ["--ctx", "163840", "--max-body-mb", "8"], case_system_36k),
        ("4 assistant \\uf8f0999\\uf8f1", [], assistant_case("\uf8f0999\uf8f1")),
        ("4 assistant hello\\uf8f0", [], assistant_case("hello\uf8f0")),
        ("4 assistant types <｜end▁of▁sentence｜>", [], assistant_case("a<｜end▁of▁sentence｜><｜User｜>b")),
        ("5 n=128 (batch 16 + queue 64)", [], case_n128),
        ("5 n=128 20/s beside another client", [], case_n_interference),
    ]
    for name in TEMPLATES:
        cases.append((f"6 template {name}", ["--tokenizer", hostile_tokenizer(name, TEMPLATES[name])], case_template))
    cases += [
        ("7 Transfer-Encoding + Content-Length", [], case_te_and_cl),
        ("7 two different Content-Length", [], case_two_lengths),
        ("7 OPTIONS /v1/completions (no CORS)", [], method_case("OPTIONS", "/v1/completions")),
        ("7 HEAD /v1/chat/completions", [], method_case("HEAD", "/v1/chat/completions")),
        ("7 FOO /health", [], method_case("FOO", "/health")),
        ("7 Content-Length 100 MB, body not sent", [], case_huge_length),
        ("8 memory after 20 x 4 MiB requests", [], case_memory),
        ("8 memory after 10 x 20,000-message requests (ctx 163840)", ["--ctx", "163840"], case_memory_messages),
        ("R GET /v1/models, Content-Length 1 + body, no key", [],
         review_case(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")),
        ("R GET /v1/models, chunked body, no key", [],
         review_case(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\nx\r\n0\r\n\r\n")),
        ("R Content-Length: abc", [],
         review_case(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{}")),
        ("R Content-Length: -1", [],
         review_case(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: -1\r\nConnection: close\r\n\r\n{}")),
        ("R Content-Type: application/jsonx", [],
         review_case(request("POST", "/v1/completions", b'{"prompt":"hi","max_tokens":1}', headers=["Content-Type: application/jsonx", "Connection: close"], length=False)
                     .replace(b"\r\n\r\n", b"\r\nContent-Length: 30\r\n\r\n", 1))),
        ("R Authorization: Bearer  k (two spaces)", [],
         review_case(request("POST", "/v1/completions", b'{"prompt":"hi","max_tokens":1}', key=False, headers=["Authorization: Bearer  k", "Connection: close"]))),
        ("H two pipelined GET /health", [], case_pipelined),
        ("H 200 slow clients trickling headers", ["--http-threads", "128"], case_slow_clients),
    ]
    cli = [
        ("9 --seed 9223372036854775808", cli_case(["generate", "--tokens", "1,2", "-n", "1", "--seed", "9223372036854775808"])),
        ("9 --tokens \"\"", cli_case(["generate", "--tokens", "", "-n", "1"])),
    ]

    if a.probe:
        http_cases = ("1 ", "2 ", "7 Transfer", "7 two", "7 Content-Length", "R GET", "H ")
        cases = [(cid, [], fn) for cid, _, fn in cases if cid.startswith(http_cases)]
        cli = []
    servers = {}
    rows = []
    for cid, args, fn in cases:
        if only and not any(o in cid for o in only):
            continue
        key = tuple(args)
        if key not in servers or not servers[key].alive():
            servers[key] = Server(a.dsv3, base + args, cid, a.probe)
        srv = servers[key]
        time.sleep(0.2)
        srv.reset_peak()
        # The machine is shared: a server growing past --rss-cap MB is killed (a runaway
        # template before the fix reached 22 GB within the 120 s the case waits).
        killed = threading.Event()
        done = threading.Event()

        def watchdog():
            while not done.wait(0.05):
                if srv.rss_mb() > a.rss_cap:
                    killed.set()
                    srv.proc.kill()
                    return

        threading.Thread(target=watchdog, daemon=True).start()
        t0 = time.time()
        (status, first, raw, sent), note = fn(srv)
        elapsed = time.time() - t0
        done.set()
        peak = a.rss_cap if killed.is_set() else srv.rss_mb("VmHWM")
        what = str(status) if status else ("connection closed" if srv.alive() else "server died")
        if killed.is_set():
            what, note = "killed", f"past {a.rss_cap} MB after {elapsed:.1f} s"
        elif not srv.alive():
            what = "server died"
        rows.append({"case": cid, "status": what, "seconds": round(elapsed, 2), "peak_rss_mb": round(peak),
                     "note": note})
        print(f"| {cid} | {what} | {elapsed:.2f} s | {peak:.0f} MB | {note} |", flush=True)
        if key not in [()] and len(args) > 0 and args[0] == "--tokenizer":
            servers.pop(key).stop()
    for s in servers.values():
        s.stop()
    for cid, fn in cli:
        if only and not any(o in cid for o in only):
            continue
        rc, secs, msg = fn(a.dsv3)
        rows.append({"case": cid, "status": f"exit {rc}", "seconds": round(secs, 2), "peak_rss_mb": None, "note": msg})
        print(f"| {cid} | exit {rc} | {secs:.2f} s | | {msg} |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
