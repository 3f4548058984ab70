"""Load the API with wrk: send_payment_request and is_valid against a constant-JSON baseline.

Run: python bench/api.py [--duration 10] [--connections 32] [--warmup 2] [--with-worker]

Starts `mobip serve` (one process, SQLite in a fresh temp data dir) on a free loopback port,
gets a token for the demo merchant, checks each request once with httpx, then runs wrk
(one thread) on /healthz (the baseline), send_payment_request and is_valid, and prints
requests/s, p50/p99 latency and the ratio of each route to the baseline, plus the server's CPU
time per request (from /proc: steadier than req/s when other work shares the machine).
Needs wrk (Debian: apt-get install -y wrk). Exits 2 without wrk, 1 when a run saw errors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
from benchkit import free_port, start_server, stop_server, wait_ready

ROOT = Path(__file__).resolve().parents[1]
API = "/api/2.0/mobip"
BOUNDARY = "------------------------d74496d66958873e"  # the shape curl uses
SUCCESS_MARKER = '"return_code":"0"'
PAYMENT_FIELDS = [
    ("item_amount_in_cents", "1250"),
    ("tax_amount", "250"),
    ("redirect_url", "https://shop.example/thanks"),
    ("call_back_url", "https://shop.example/cb"),
    ("item_name", "Mug"),
    ("customer_email", "c@example.com"),
    ("media", "EMAIL"),
    ("track_id", "bench"),
]
GOALS = {"send_payment_request": 0.10, "is_valid": 0.40}

# One wrk Lua script per route. Every thread counts the replies that are not 2xx or whose body
# lacks the success marker; done() sums the threads and prints one JSON line after a marker.
LUA_TEMPLATE = """
wrk.method = "{method}"
wrk.body = {body}
{content_type}
local expect_marker = {expect_marker}
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  bad_body = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif expect_marker and not string.find(body, '{marker}', 1, true) then
    bad_body = bad_body + 1
  end
end

function done(summary, latency, requests)
  local non2xx_total, bad_body_total = 0, 0
  for _, thread in ipairs(threads) do
    non2xx_total = non2xx_total + thread:get("non2xx")
    bad_body_total = bad_body_total + thread:get("bad_body")
  end
  local e = summary.errors
  io.write("BENCH_JSON ")
  io.write(string.format(
    '{{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
    .. '"non2xx":%d,"bad_body":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, non2xx_total, bad_body_total, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    body: bytes = b""
    expect_marker: bool = True  # the API's success envelope; /healthz has none


@dataclass(frozen=True)
class Result:
    route: Route
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    cpu_seconds: float = 0.0  # the server process's user + system CPU time during the run

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


def multipart(fields: list[tuple[str, str]]) -> bytes:
    """The body curl sends for `-F name=value` per field."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


def lua_string(data: bytes) -> str:
    """A Lua string literal holding exactly these bytes (long brackets would rewrite CRLF)."""
    safe = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.:/=;@"
    return '"' + "".join(chr(b) if b in safe else f"\\{b:03d}" for b in data) + '"'


def lua_script(route: Route) -> str:
    content_type = (
        f'wrk.headers["Content-Type"] = "multipart/form-data; boundary={BOUNDARY}"'
        if route.body
        else ""
    )
    return LUA_TEMPLATE.format(
        method=route.method,
        body=lua_string(route.body) if route.body else "nil",
        content_type=content_type,
        expect_marker="true" if route.expect_marker else "false",
        marker=SUCCESS_MARKER,
    )


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{head}-dirty" if git("status", "--porcelain", "--untracked-files=no") else head


def demo_credentials(out: Path) -> tuple[str, str]:
    text = out.read_text(errors="replace")
    account = re.search(r"^\s*api_account_id\s+(\S+)", text, re.MULTILINE)
    secret = re.search(r"^\s*api_secret_key\s+(\S+)", text, re.MULTILINE)
    if not account or not secret:
        raise RuntimeError(f"no demo merchant credentials in the server's output:\n{text}")
    return account.group(1), secret.group(1)


def call(client: httpx.Client, route: Route) -> dict[str, object]:
    """One request exactly as wrk sends it; the reply must be a 2xx success envelope."""
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"} if route.body else {}
    response = client.request(route.method, route.path, content=route.body, headers=headers)
    if response.status_code // 100 != 2:
        raise RuntimeError(f"{route.name}: HTTP {response.status_code} {response.text}")
    reply: dict[str, object] = response.json()
    if route.expect_marker and reply.get("return_code") != "0":
        raise RuntimeError(f"{route.name}: {response.text}")
    return reply


def prepare_routes(client: httpx.Client, api_account_id: str, api_secret_key: str) -> list[Route]:
    """Token, one transaction for is_valid, and each route checked once."""
    token_route = Route(
        "get_token",
        "GET",
        f"{API}/get_token",
        multipart(
            [
                ("api_account_id", api_account_id),
                ("api_secret_key", api_secret_key),
                ("api_ttl", "24"),
            ]
        ),
    )
    token = str(call(client, token_route)["access_token"])
    baseline = Route("baseline (/healthz)", "GET", "/healthz", expect_marker=False)
    if call(client, baseline) != {"status": "ok"}:
        raise RuntimeError("/healthz did not return {'status': 'ok'}")
    send = Route(
        "send_payment_request",
        "POST",
        f"{API}/send_payment_request",
        multipart([("access_token", token), *PAYMENT_FIELDS]),
    )
    trid = str(call(client, send)["trid"])
    is_valid = Route(
        "is_valid", "GET", f"{API}/is_valid", multipart([("access_token", token), ("trid", trid)])
    )
    call(client, is_valid)
    return [baseline, send, is_valid]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    url: str, route: Route, script: Path, seconds: float, args: argparse.Namespace, pid: int
) -> Result:
    script.write_text(lua_script(route))
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={args.timeout:g}s",
        "--latency",
        "-s",
        str(script),
        url + route.path,
    ]
    cpu_before = process_cpu_seconds(pid)
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    cpu_seconds = process_cpu_seconds(pid) - cpu_before
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = {
        key: data[key]
        for key in ("non2xx", "bad_body", "connect", "read", "write", "timeout")
        if data[key]
    }
    return Result(
        route=route,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=errors,
        cpu_seconds=cpu_seconds,
    )


def report(results: list[Result]) -> bool:
    """Print the table and the goals; True when no run saw an error."""
    baseline = results[0].rps
    base_cpu = results[0].cpu_ms_per_request
    print(
        f"{'route':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'vs baseline':>12} {'CPU ms/req':>11} {'CPU vs base':>12}  errors"
    )
    for r in results:
        errors = ", ".join(f"{k}={v}" for k, v in r.errors.items()) or "0"
        print(
            f"{r.route.name:<22} {r.rps:>9,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.max_ms:>8.2f} {r.rps / baseline:>12.1%} {r.cpu_ms_per_request:>11.3f} "
            f"{base_cpu / r.cpu_ms_per_request if r.cpu_ms_per_request else 0:>12.1%}  {errors}"
        )
    print()
    by_name = {r.route.name: r for r in results}
    for name, goal in GOALS.items():
        ratio = by_name[name].rps / baseline
        verdict = "met" if ratio >= goal else "NOT met"
        cpu_ratio = base_cpu / by_name[name].cpu_ms_per_request
        print(
            f"goal: {name} >= {goal:.0%} of baseline: {verdict} ({ratio:.1%}; "
            f"by server CPU per request {cpu_ratio:.1%})"
        )
    clean = all(r.error_total == 0 for r in results)
    if not clean:
        print("\nWARNING: some runs saw errors (non-2xx, bad bodies or socket errors):")
        print("their figures measure errors, not the API. See the errors column.")
    return clean


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per route (10)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per route (2)")
    parser.add_argument("--connections", type=int, default=32, help="open connections (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--timeout", type=float, default=10, help="wrk's per-request timeout in seconds (10)"
    )
    parser.add_argument(
        "--with-worker",
        action="store_true",
        help="keep the in-process delivery worker on (default off: it would poll the outbox "
        "that send_payment_request fills, during the measure)",
    )
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. Install it (Debian/Ubuntu): apt-get install -y wrk",
            file=sys.stderr,
        )
        return 2

    with tempfile.TemporaryDirectory(prefix="mobip-bench-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = start_server(data_dir, port, worker=args.with_worker)
        out = data_dir / "server.out"
        try:
            wait_ready(process, base, data_dir)
            with httpx.Client(base_url=base, timeout=10) as client:
                routes = prepare_routes(client, *demo_credentials(out))
            print(
                f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}); "
                f"load average {os.getloadavg()[0]:.2f}; commit {commit()}; "
                f"Python {sys.version.split()[0]}"
            )
            print(
                f"server: mobip serve, 1 process (pid {process.pid}), SQLite, port {port}, "
                f"log level WARNING, in-process worker {'ON' if args.with_worker else 'OFF'}"
            )
            print(
                f"wrk: -t{args.threads} -c{args.connections} --timeout {args.timeout:g}s; "
                f"{args.warmup:g} s warm-up + {args.duration:g} s per route; "
                "each request checked once with httpx first\n"
            )
            script = data_dir / "route.lua"
            results = []
            for route in routes:
                if args.warmup > 0:
                    run_wrk(base, route, script, args.warmup, args, process.pid)
                results.append(run_wrk(base, route, script, args.duration, args, process.pid))
            clean = report(results)
        finally:
            stop_server(process)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
