"""Benchmark ``churn serve`` on a 1,000,000-account run, through uvicorn on this machine.

    python benchmarks/serve.py                       # 1M accounts, 4 weekly runs of history
    python benchmarks/serve.py --rows 200000 --requests 500
    python benchmarks/serve.py --rows 200000 --load-seconds 20      # a shorter load phase

1. A model is trained on generated data (``--accounts``, default 4,000; ``--model BUNDLE`` reuses one).
2. A scoring folder gets ``--runs`` weekly risk lists of ``--rows`` accounts each, with every
   column ``churn score`` writes (probabilities drawn at random: serving only reads the list).
3. ``churn serve`` starts in a subprocess on 127.0.0.1 (a free port) and is timed from a
   client in this process, one request at a time over a kept-alive connection:

   * ``GET /accounts/{id}`` for random accounts             (goal p50 ≤ 20 ms, p99 ≤ 100 ms)
   * ``GET /accounts?band=high&limit=50`` at random offsets  (goal p50 ≤ 20 ms, p99 ≤ 100 ms)
   * ``POST /score`` of one account with a year of interactions   (goal p50 ≤ 20 ms, p99 ≤ 50 ms)
   * for reference: an owner's accounts by probability, and a text search on the id.

4. Then ``--clients`` (default 8) concurrent clients, each on its own kept-alive connection, for
   ``--load-seconds`` (default 60), each alternating ``GET /accounts/{id}`` (a random account) and
   ``POST /score`` (the same account as above):   (goal: no 5xx; GET p99 ≤ 20 ms, POST p99 ≤ 100 ms)

Prints start-up time, server memory, p50/p99 per request type with the CPU time per request of
the server and its scoring workers (robust to other jobs on the machine, which inflate
wall-clock latency), and the goals; under load, the status codes per route, p50/p99 per route,
the CPU the clients and the server used (the clients share the machine: their share is CPU the
server did not have) and the server's peak memory (VmHWM, the front process and each worker).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pandas as pd

from churn.config import ChurnDefinition, ScoreConfig
from churn.data.dataend import observed_until
from churn.data.synthetic import generate
from churn.features.labels import build_training_table, default_cutoffs
from churn.features.spec import FeatureSpec
from churn.modeling.survival import SURVIVAL_COLUMNS
from churn.outreach.playbook import default_playbook
from churn.outreach.policy import POLICY_COLUMNS
from churn.outreach.runs import make_run_id, write_run
from churn.outreach.score import RISK_LIST_COLUMNS, assign_outreach, rank_accounts, risk_bands, summary_counts

REASONS = [  # (feature, driver family, text)
    ("repeat_contacts_90d", "support_effort", "had to come back {v} times about the same problem (or within 7 days) in the last 90 days; typical: none"),
    ("long_waits_90d", "support_effort", "{v} contacts with a long wait in the last 90 days; typical: none"),
    ("contract", "contract", "on a monthly contract"),
    ("csat_mean_365d", "survey", "average CSAT {v} of 5 over the last year; typical: 4 of 5"),
    ("n_login_30d", "usage", "{v} logins in the last 30 days; typical: 18 logins"),
    ("price_increase_90d", "billing", "a price increase on an invoice in the last 90 days; typical: 3% of accounts"),
]


def synthetic_run(n: int, as_of: pd.Timestamp, rng: np.random.Generator, base: np.ndarray | None) -> pd.DataFrame:
    """A risk list with every column, vectorised; probabilities drift a little run to run."""
    p = rng.beta(0.6, 8.0, n) if base is None else np.clip(base * rng.lognormal(0, 0.15, n), 0, 1)
    config = ScoreConfig(capacity=5_000)
    frame = pd.DataFrame({"account_id": [f"A{i:07d}" for i in range(n)], "churn_probability": p})
    frame["as_of"] = as_of
    frame["owner"] = pd.Series(np.array([f"owner-{k:03d}" for k in range(400)])[rng.integers(0, 400, n)], dtype="str")
    frame["segment"] = pd.Series(np.array(["consumer", "smb", "enterprise"])[rng.choice(3, n, p=[0.6, 0.3, 0.1])], dtype="str")
    frame["risk_band"] = risk_bands(p, config)
    frame["annual_value"] = np.round(12 * rng.lognormal(3.5, 0.9, n), 2)
    frame["revenue_at_risk"] = p * frame["annual_value"]
    frame["rank"] = rank_accounts(frame, config)
    frame = frame.join(assign_outreach(frame, config))
    picks = rng.integers(0, len(REASONS), (n, 3))
    values = rng.integers(1, 20, (n, 3)).astype(str)
    head = np.array([t.split("{v}")[0] for _, _, t in REASONS], dtype=object)
    tail = np.array([t.split("{v}")[-1] if "{v}" in t else "" for _, _, t in REASONS], dtype=object)
    takes = np.array(["{v}" in t for _, _, t in REASONS])
    for j in range(3):  # three reason columns
        k = picks[:, j]
        frame[f"reason_{j + 1}"] = pd.Series(head[k] + np.where(takes[k], values[:, j], "").astype(object) + tail[k], dtype="str")
    names = np.array([f for f, _, _ in REASONS], dtype=object)
    families = np.array([d for _, d, _ in REASONS], dtype=object)
    frame["reason_features"] = pd.Series(names[picks[:, 0]], dtype="str") + "," + names[picks[:, 1]] + "," + names[picks[:, 2]]
    frame["reason_drivers"] = pd.Series(families[picks[:, 0]], dtype="str") + "," + families[picks[:, 1]] + "," + families[picks[:, 2]]
    frame["reason_contributions"] = pd.Series(np.char.mod("%.4g", rng.exponential(0.3, n)), dtype="str") + ",0.1,0.05"
    frame["reason_method"] = np.where(frame["rank"] <= 100_000, "tree_shap", "deviation")
    frame["suggested_action"], frame["action_wording"] = default_playbook().actions_for(families[picks[:, 0]])
    frame["previous_probability"] = np.nan if base is None else base
    frame["probability_change"] = frame["churn_probability"] - frame["previous_probability"]
    frame["change"] = "first run" if base is None else np.where(frame["probability_change"] > 0.02, "risk up", np.where(frame["probability_change"] < -0.02, "risk down", "steady"))
    frame["reasons_changed"] = pd.array([pd.NA] * n, dtype="boolean")
    for column in (*SURVIVAL_COLUMNS, *POLICY_COLUMNS):  # a model without survival or uplift parts: empty
        frame[column] = np.nan
    return frame.sort_values("rank").reset_index(drop=True)[RISK_LIST_COLUMNS]


def write_runs(scores: Path, n: int, runs: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = None
    for k in range(runs):
        as_of = pd.Timestamp("2024-12-02", tz="UTC") + pd.Timedelta(weeks=k - runs + 1)
        risk = synthetic_run(n, as_of, rng, base)
        base = risk.sort_values("account_id")["churn_probability"].to_numpy()
        now = pd.Timestamp.now(tz="UTC")
        record = {"run_id": make_run_id(as_of, now), "as_of": f"{as_of:%Y-%m-%d}", "scored_at": now.strftime("%Y-%m-%d %H:%M:%S UTC"), "model": "benchmark", **summary_counts(risk)}
        write_run(scores, risk, record)
    return risk


def train_bundle(folder: Path, accounts: int) -> tuple[Path, object]:
    from churn.modeling.model import save_bundle
    from churn.modeling.train import train

    data = generate(accounts, months=18, seed=11)
    spec = FeatureSpec.from_data(data.accounts, data.interactions)
    cutoffs = default_cutoffs(observed_until(data.accounts, data.interactions), ChurnDefinition(), 8)
    definition = ChurnDefinition().resolved(data.accounts)  # as `churn train` stores it: POST /score needs the kind
    result = train(build_training_table(data.accounts, data.interactions, cutoffs=cutoffs, spec=spec), spec=spec, definition=definition)
    bundle = folder / "model.joblib"
    save_bundle(result.model, bundle)
    return bundle, data


def score_body(data, as_of: pd.Timestamp) -> tuple[dict[str, object], int]:  # type: ignore[no-untyped-def]
    """The active account with the most interactions in the year before ``as_of``."""
    t = data.interactions["occurred_at"]
    year = data.interactions[(t < as_of) & (t >= as_of - pd.Timedelta(days=365))]
    active = data.accounts[(data.accounts["signup_at"] < as_of - pd.Timedelta(days=365)) & ~(data.accounts["churned_at"] <= as_of).fillna(False)]
    counts = year[year["account_id"].isin(active["account_id"])]["account_id"].value_counts()
    account = counts.index[0]
    rows = {"accounts": data.accounts[data.accounts["account_id"] == account], "interactions": year[year["account_id"] == account]}
    body: dict[str, object] = {"as_of": f"{as_of:%Y-%m-%d}"}
    for name, frame in rows.items():
        frame = frame.copy()
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
                frame[col] = frame[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        body[name] = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return body, int(counts.iloc[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_gib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc): unlike wall time, it does not grow
    when other jobs share the machine's cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The server's child processes (its scoring workers), from /proc."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of the server and its scoring workers (a worker that has exited no longer counts)."""
    total = cpu_seconds(pid)
    for child in children(pid):
        try:
            total += cpu_seconds(child)
        except OSError:
            pass
    return total


def timed(client: httpx.Client, requests: list[tuple[str, str, dict | None]], pid: int, warmup: int = 30) -> tuple[np.ndarray, float, float]:
    """Latency of each request in ms (after ``warmup`` untimed ones), and the CPU ms per timed
    request of the server and its scoring workers together and of the server process alone;
    every answer must be 200."""
    out = []
    cpu = front = 0.0
    for i, (method, url, body) in enumerate(requests):  # bounded: len(requests)
        if i == warmup:
            cpu, front = tree_cpu_seconds(pid), cpu_seconds(pid)
        start = time.perf_counter()
        response = client.request(method, url, json=body)
        elapsed = (time.perf_counter() - start) * 1e3
        if response.status_code != 200:
            raise SystemExit(f"{method} {url} → {response.status_code}: {response.text[:300]}")
        if i >= warmup:
            out.append(elapsed)
    n = max(len(out), 1)
    return np.array(out), (tree_cpu_seconds(pid) - cpu) * 1e3 / n, (cpu_seconds(pid) - front) * 1e3 / n


def peak_rss_gib(pid: int) -> float:
    """A process's peak resident memory since it started (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def under_load(base: str, ids: np.ndarray, body: dict[str, object], clients: int, seconds: float) -> dict[str, tuple[list[float], dict[int, int]]]:
    """``clients`` threads, one connection each, alternating a GET of a random account and a
    POST /score until ``seconds`` have passed: per route, the latencies (ms) and the count of
    each status code (a transport error counts as status 0). Bounded by time; no request is
    started after the deadline.

    The clients run on the server's machine, so their CPU is taken from the server's: the body
    is encoded to JSON once, not by httpx on every POST (a 200 kB body costs the client a few
    ms of CPU each time), and the caller prints the clients' own CPU share."""
    content = json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    routes = ("GET /accounts/{id}", "POST /score")
    results: dict[str, tuple[list[float], dict[int, int]]] = {r: ([], {}) for r in routes}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client_loop(k: int) -> None:
        rng = np.random.default_rng(100 + k)
        with httpx.Client(base_url=base, timeout=60) as client:
            turn = k % 2  # half the clients start with a score
            while time.perf_counter() < deadline:
                route = routes[turn]
                turn = 1 - turn
                start = time.perf_counter()
                try:
                    if route == routes[0]:
                        status = client.get(f"/accounts/{ids[rng.integers(0, len(ids))]}").status_code
                    else:
                        status = client.post("/score", content=content, headers=headers).status_code
                except httpx.TransportError:
                    status = 0
                elapsed = (time.perf_counter() - start) * 1e3
                with lock:
                    results[route][0].append(elapsed)
                    results[route][1][status] = results[route][1].get(status, 0) + 1

    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def report(name: str, result: tuple[np.ndarray, float, float], goal: str) -> None:
    ms, cpu, front = result
    print(
        f"{name:<50} p50 {np.percentile(ms, 50):7.2f} ms  p99 {np.percentile(ms, 99):7.2f} ms  server CPU {cpu:6.2f} ms/request "
        f"(server process {front:5.2f})  ({len(ms):,})  goal: {goal}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=4_000, help="accounts of the generated business the model is trained on")
    parser.add_argument("--runs", type=int, default=4, help="weekly runs in the folder (history for the score trend)")
    parser.add_argument("--requests", type=int, default=2_000, help="timed requests per list/lookup type")
    parser.add_argument("--score-requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the load phase")
    parser.add_argument("--load-seconds", type=float, default=60.0, help="length of the load phase (0: skip it)")
    parser.add_argument("--model", type=Path, default=None, help="a .joblib bundle trained on generated data (default: train one)")
    parser.add_argument("--score-workers", type=int, default=None, help="churn serve --score-workers (default: the server's default)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="churn-serve-bench-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        if args.model is None:
            bundle, data = train_bundle(folder, args.accounts)
        else:
            bundle, data = args.model, generate(4_000, months=18, seed=11)
        print(f"model ready in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        risk = write_runs(folder / "scores", args.rows, args.runs)
        print(f"{args.runs} runs × {args.rows:,} accounts written in {time.perf_counter() - t:.0f} s")
        body, n_events = score_body(data, observed_until(data.accounts, data.interactions).normalize())

        port = free_port()
        command = [sys.executable, "-m", "churn", "serve", "--scores", str(folder / "scores"), "--model", str(bundle), "--port", str(port), "--no-access-log"]
        if args.score_workers is not None:
            command += ["--score-workers", str(args.score_workers)]
        # the server runs in the temporary folder: a relative PYTHONPATH (PYTHONPATH=src) must not
        # fall through to whichever churn is installed
        path = os.pathsep.join(str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
        env = {**os.environ, "CHURN_API_KEY": "", **({"PYTHONPATH": path} if path else {})}
        t = time.perf_counter()
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                for _ in range(1200):  # bounded wait for start-up (≤ 10 min)
                    if server.poll() is not None:
                        raise SystemExit(f"churn serve exited with {server.returncode}")
                    try:
                        if client.get("/ready").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.5)
                else:
                    raise SystemExit("churn serve did not become ready")
                workers = children(server.pid)
                print(
                    f"churn serve ready in {time.perf_counter() - t:.1f} s (loads the model, indexes the latest run and {args.runs - 1} past runs); "
                    f"server RSS {rss_gib(server.pid):.2f} GiB; {len(workers)} child process(es) (scoring workers, multiprocessing's tracker)"
                )

                rng = np.random.default_rng(1)
                ids = risk["account_id"].to_numpy()[rng.integers(0, len(risk), args.requests + 30)]
                high = int((risk["risk_band"] == "high").sum())
                offsets = rng.integers(0, max(high - 50, 1), args.requests + 30)
                known = risk["owner"].unique()  # all 400 owners at full size, fewer in a toy run
                owners = known[rng.integers(0, len(known), args.requests // 4 + 30)]
                print(f"\n{args.rows:,} accounts ({high:,} high risk); one client, one request at a time, kept-alive connection")
                print(f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall-clock percentiles grow with it, server CPU per request does not):")
                report("GET /accounts/{id}", timed(client, [("GET", f"/accounts/{a}", None) for a in ids], server.pid), "p50 ≤ 20 ms, p99 ≤ 100 ms")
                report("GET /accounts?band=high&limit=50", timed(client, [("GET", f"/accounts?band=high&limit=50&offset={o}", None) for o in offsets], server.pid), "p50 ≤ 20 ms, p99 ≤ 100 ms")
                report("  (reference) ?owner=…&sort=-churn_probability", timed(client, [("GET", f"/accounts?owner={o}&sort=-churn_probability&limit=50", None) for o in owners], server.pid), "—")
                report("  (reference) ?q=<5 digits> (substring of every id)", timed(client, [("GET", f"/accounts?q={a[-5:]}&limit=50", None) for a in ids[: args.requests // 4 + 30]], server.pid), "—")
                report(f"POST /score (1 account, {n_events} interactions in a year)", timed(client, [("POST", "/score", body)] * (args.score_requests + 30), server.pid), "p50 ≤ 20 ms, p99 ≤ 50 ms")
                print(f"server RSS after the run: {rss_gib(server.pid):.2f} GiB")
            if args.load_seconds > 0:
                print(f"\nunder load: {args.clients} concurrent clients for {args.load_seconds:g} s, each alternating GET /accounts/{{id}} and POST /score")
                wall, mine, theirs, front = time.perf_counter(), time.process_time(), tree_cpu_seconds(server.pid), cpu_seconds(server.pid)
                loaded = under_load(base, risk["account_id"].to_numpy(), body, args.clients, args.load_seconds)
                wall, mine = time.perf_counter() - wall, time.process_time() - mine
                theirs, front = tree_cpu_seconds(server.pid) - theirs, cpu_seconds(server.pid) - front
                cores = os.cpu_count() or 1
                print(
                    f"CPU over the load phase ({wall:.1f} s × {cores} cores): the {args.clients} clients (this process) {mine:.1f} s "
                    f"({mine / wall / cores:.0%} of the machine), churn serve {theirs:.1f} s ({theirs / wall / cores:.0%}; its own process {front:.1f} s, "
                    f"scoring workers {theirs - front:.1f} s); load average {os.getloadavg()[0]:.1f}"
                )
                goals = {"GET /accounts/{id}": "p99 ≤ 20 ms", "POST /score": "p99 ≤ 100 ms"}
                for route, (ms, codes) in loaded.items():
                    counts = ", ".join(f"{code or 'transport error'}: {n:,}" for code, n in sorted(codes.items()))
                    fives = sum(n for code, n in codes.items() if code >= 500 or code == 0)
                    print(
                        f"{route:<20} {len(ms):,} requests ({len(ms) / args.load_seconds:.0f}/s)  p50 {np.percentile(ms, 50):7.2f} ms  "
                        f"p99 {np.percentile(ms, 99):7.2f} ms  status {{{counts}}}  5xx/errors: {fives}  goal: no 5xx, {goals[route]}"
                    )
            workers = ", ".join(f"{peak_rss_gib(pid):.2f}" for pid in children(server.pid))
            print(f"server peak RSS (VmHWM) over the whole run: {peak_rss_gib(server.pid):.2f} GiB" + (f"; its child processes' {workers} GiB" if workers else ""))
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
