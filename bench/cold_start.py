"""Bench 6: cold start: import time of ``function_app`` vs a bare Azure Functions app.

Each sample is a fresh ``python -c`` process (run alternately, 12 each) timing its own import
with ``time.perf_counter`` (interpreter start-up, identical for all, is excluded; the whole
process wall time is printed too).  The bare app: ``azure.functions`` + one HTTP trigger.
Also measured: ``function_app`` plus its first HTTP request (GET /api/openapi.json through the
ASGI app, which builds FastAPI on that call) — the cost a cold HTTP start still pays once.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Result, say

ROOT = Path(__file__).resolve().parent.parent
TIMED = "import time; t = time.perf_counter()\n{body}\nprint(time.perf_counter() - t)"
PROGRAMS = {
    "function_app": "import function_app",
    "bare": ("import azure.functions as func\napp = func.FunctionApp()\n"
             "@app.route(route='hello')\ndef hello(req: func.HttpRequest) -> func.HttpResponse:\n"
             "    return func.HttpResponse('ok')"),
    "function_app + first request": (
        "import asyncio\nimport function_app\nfrom shared.triggers.http_api import asgi_app\n"
        "sent = []\n"
        "async def receive():\n    return {'type': 'http.request', 'body': b'', 'more_body': False}\n"
        "async def send(message):\n    sent.append(message)\n"
        "scope = {'type': 'http', 'asgi': {'version': '3.0'}, 'http_version': '1.1', 'method': 'GET',\n"
        "         'scheme': 'http', 'path': '/api/openapi.json', 'raw_path': b'/api/openapi.json',\n"
        "         'query_string': b'', 'root_path': '', 'headers': [(b'host', b'localhost')],\n"
        "         'server': ('localhost', 80), 'client': ('127.0.0.1', 1)}\n"
        "asyncio.run(asgi_app(scope, receive, send))\nassert sent[0]['status'] == 200, sent[0]"),
}


def sample(body: str) -> tuple[float, float]:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", TIMED.format(body=body)], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"cold-start sample failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1]), wall


def heaviest_imports(count: int = 6) -> str:
    """The biggest cumulative imports under function_app (``python -X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import function_app"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            depth = len(parts[2]) - len(parts[2].lstrip())
            if depth <= 3:  # function_app and its direct imports
                rows.append((int(parts[1]), parts[2].strip()))
    rows.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in rows[:count])


def run(tiny: bool = False) -> list[Result]:
    repeats = 2 if tiny else 12
    imports: dict[str, list[float]] = {name: [] for name in PROGRAMS}
    walls: dict[str, list[float]] = {name: [] for name in PROGRAMS}
    for _ in range(repeats):
        for name, body in PROGRAMS.items():
            seconds, wall = sample(body)
            imports[name].append(seconds)
            walls[name].append(wall)
    med = {name: statistics.median(values) for name, values in imports.items()}
    for name in PROGRAMS:
        say(f"{name}: median {med[name] * 1000:.0f} ms in-process, {statistics.median(walls[name]) * 1000:.0f} ms "
            f"whole process ({repeats} fresh processes)")
    say(f"biggest imports of function_app: {heaviest_imports()}")
    ratio = med["function_app"] / med["bare"]
    return [
        Result("cold start, function_app / bare app import", ratio, "x", 1.5,
               detail=f"{med['function_app'] * 1000:.0f} ms vs {med['bare'] * 1000:.0f} ms (median of {repeats})"),
        Result("cold start, function_app + first HTTP request", med["function_app + first request"] * 1000, " ms",
               detail="the FastAPI build the lazy ASGI app defers to the first request"),
    ]
