"""Attack ``churn serve`` from this machine and print how it answers, with its peak memory.

    python benchmarks/attack.py                        # a 20,000-account run
    python benchmarks/attack.py --accounts 1000000     # the 1M-account run

Loopback only: the server listens on 127.0.0.1 (a free port) and every request comes from
this process. Bounded: each attack stops at the server's first answer, after its count, or
at ``--seconds``, whichever comes first.

1. A model is trained on a small generated business, and a scoring folder gets one risk
   list of ``--accounts`` accounts (the list of ``benchmarks/serve.py``).
2. ``churn serve`` starts with ``CHURN_API_KEY`` set, and its resident memory is sampled
   every 20 ms from start to end (psutil).
3. The attacks, each with the status it must get:

   * a 50 MB body declared in ``Content-Length``          → 413, before the body is read
   * 10,000 interactions with 1 MB strings, streamed (chunked) → 413, at the body limit
   * one interaction with a 1 MB string (under the body limit) → 422
   * one more interaction than the limit, one account with 1,000 attributes → 422
   * a signed-in session cookie sent to the API           → 401 (the pages: 200)
   * 1,000 sign-in attempts with wrong keys                → 401 × 5, then 429 with Retry-After

Exits 1 if any answer is not the one designed (a 5xx included).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from serve import free_port, train_bundle, write_runs  # noqa: E402  (the serving benchmark's run and model)

MB = 2**20
HOST = "127.0.0.1"


class PeakRss:
    """The server's resident memory, sampled in a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def raw_post(port: int, path: str, headers: dict[str, str], pieces: Iterator[bytes], *, chunked: bool, deadline: float) -> tuple[int, int]:
    """POST over a bare socket, sending ``pieces`` until the server answers (or the pieces or
    the time run out): (status, bytes of body sent before the answer). A thread waits for the
    answer from the start, so it is read even when the server closes the connection while
    this side is still sending (a reset would otherwise discard it)."""
    head = f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else "\r\n"
    answer: list[bytes] = []
    sent = 0
    with socket.create_connection((HOST, port), timeout=60) as sock:

        def read() -> None:
            try:
                answer.append(sock.recv(4096))
            except OSError:
                answer.append(b"")

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            sock.sendall(head.encode())
            for piece in pieces:
                if answer or time.monotonic() > deadline:
                    break  # the server has answered: stop sending
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server closed the connection after answering
            pass
        reader.join(timeout=60)
    first = answer[0] if answer else b""
    return (int(first.split(b" ", 2)[1]) if first.startswith(b"HTTP/") else 0), sent


def event(string: str) -> dict[str, object]:
    return {"account_id": "A0000001", "occurred_at": "2024-11-01T10:00:00Z", "event_type": "support_contact", "channel": string}


def streamed_body(events: int, string: str) -> Iterator[bytes]:
    """A ``POST /score`` body of ``events`` interactions, one piece each (never all in memory)."""
    yield json.dumps(score_body([]))[:-2].encode()  # up to `"interactions": [`
    for i in range(events):
        yield json.dumps(event(string)).encode() + (b"," if i < events - 1 else b"")
    yield b"]}"


def score_body(interactions: list[dict[str, object]], **account: object) -> dict[str, object]:
    return {"as_of": "2024-12-02", "accounts": [{"account_id": "A0000001", "signup_at": "2023-01-01", **account}], "interactions": interactions}


def attacks(port: int, key: str, args: argparse.Namespace, deadline: float) -> list[tuple[str, str, Counter[int], str]]:
    """(attack, designed answer, statuses, note) for each attack, in order."""
    out: list[tuple[str, str, Counter[int], str]] = []
    base = f"http://{HOST}:{port}"
    json_headers = {"Content-Type": "application/json", "X-API-Key": key}

    size = int(args.body_mb * MB)
    status, sent = raw_post(port, "/score", {**json_headers, "Content-Length": str(size)}, (b" " * 65536 for _ in range(-(-size // 65536))), chunked=False, deadline=deadline)
    out.append((f"{args.body_mb:g} MB body (Content-Length)", "413", Counter([status]), f"{sent / MB:.1f} MB sent before the answer"))

    string = "x" * int(args.string_mb * MB)
    status, sent = raw_post(port, "/score", json_headers, streamed_body(args.events, string), chunked=True, deadline=deadline)
    out.append((f"{args.events:,} interactions with {args.string_mb:g} MB strings (chunked)", "413", Counter([status]), f"{sent / MB:.1f} MB sent before the answer"))

    with httpx.Client(base_url=base, timeout=60) as client:
        long_text = client.post("/score", json=score_body([event(string)]), headers={"X-API-Key": key})
        out.append((f"one interaction with a {args.string_mb:g} MB string", "422", Counter([long_text.status_code]), long_text.json()["error"]["message"][:70]))
        rows = client.post("/score", json=score_body([event("phone")] * (args.max_interactions + 1)), headers={"X-API-Key": key})
        out.append((f"{args.max_interactions + 1:,} interactions (limit {args.max_interactions:,})", "422", Counter([rows.status_code]), rows.json()["error"]["message"][:70]))
        attributes = client.post("/score", json=score_body([], **{f"attr_{i}": "x" for i in range(1000)}), headers={"X-API-Key": key})
        out.append(("one account with 1,000 attributes", "422", Counter([attributes.status_code]), attributes.json()["error"]["message"][:70]))

        signed = client.post("/app/login", data={"key": key, "name": "attacker", "next": "/app"})
        cookie = signed.cookies.get("churn_session") or client.cookies.get("churn_session") or ""
        only_cookie = {"Cookie": f"churn_session={cookie}"}
        api = Counter(httpx.request(m, base + p, headers=only_cookie, json=b).status_code for m, p, b in (("GET", "/accounts", None), ("GET", "/runs", None), ("POST", "/score", {})))
        page = httpx.get(base + "/app", headers=only_cookie).status_code
        out.append(("session cookie sent to the API (3 endpoints)", "401", api, f"the same cookie on /app: {page}"))

        logins: Counter[int] = Counter()
        retry = ""
        for i in range(args.logins):
            if time.monotonic() > deadline:
                break
            answer = httpx.post(base + "/app/login", data={"key": f"guess-{i}"})
            logins[answer.status_code] += 1
            retry = answer.headers.get("Retry-After", retry)
        right = httpx.post(base + "/app/login", data={"key": key}).status_code
        out.append((f"{args.logins:,} sign-ins with wrong keys", "401 ×5, then 429", logins, f"Retry-After {retry} s; the right key next: {right}"))
    return out


def designed(name: str, expected: str, statuses: Counter[int]) -> bool:
    if expected.startswith("401 ×5"):
        return statuses[401] == min(5, sum(statuses.values())) and set(statuses) <= {401, 429}
    return set(statuses) == {int(expected)}


def start_server(scores: Path, bundle: Path, key: str, args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "CHURN_API_KEY": key, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "churn", "serve", "--host", HOST, "--scores", str(scores), "--model", str(bundle), "--port", str(port),
               "--no-access-log", "--max-interactions", str(args.max_interactions), "--max-body-mb", str(args.max_body_mb)]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    for _ in range(600):  # up to ~5 minutes: a 1M-account run takes a while to index
        if process.poll() is not None:
            raise SystemExit(f"churn serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=1).status_code == 200:
                return process, port
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"churn serve did not answer /health:\n{log.read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000, help="accounts on the risk list served")
    parser.add_argument("--train-accounts", type=int, default=2_000, help="accounts of the generated business the model is trained on")
    parser.add_argument("--body-mb", type=float, default=50.0)
    parser.add_argument("--events", type=int, default=10_000, help="interactions in the streamed attack")
    parser.add_argument("--string-mb", type=float, default=1.0, help="length of each interaction's string")
    parser.add_argument("--logins", type=int, default=1_000)
    parser.add_argument("--max-interactions", type=int, default=100_000, help="the server's limit (churn serve --max-interactions)")
    parser.add_argument("--max-body-mb", type=float, default=16.0, help="the server's limit (churn serve --max-body-mb)")
    parser.add_argument("--seconds", type=float, default=300.0, help="stop attacking after this long")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="churn-attack-") as tmp:
        folder = Path(tmp)
        bundle, _ = train_bundle(folder, args.train_accounts)
        write_runs(folder / "scores", args.accounts, 1)
        key = secrets.token_hex(16)
        t = time.perf_counter()
        process, port = start_server(folder / "scores", bundle, key, args, folder / "serve.log")
        print(f"churn serve on {HOST}:{port} over {args.accounts:,} accounts, up in {time.perf_counter() - t:.0f} s")
        rss = PeakRss(process.pid)
        try:
            results = attacks(port, key, args, time.monotonic() + args.seconds)
        finally:
            rss.stop()
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        ok = True
        print(f"{'attack':<52} {'designed':<18} {'answers':<22} note")
        for name, expected, statuses, note in results:
            good = designed(name, expected, statuses)
            ok &= good
            answers = ", ".join(f"{s}×{n}" for s, n in sorted(statuses.items()))
            print(f"{name:<52} {expected:<18} {answers:<22} {note}{'' if good else '   <-- NOT AS DESIGNED'}")
        print(f"server peak RSS {rss.peak / MB:,.0f} MiB (after start-up {rss.start / MB:,.0f} MiB, +{(rss.peak - rss.start) / MB:,.0f} MiB under attack)")
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
