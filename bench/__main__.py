"""`python -m bench [--quick] [--reps N] NAME...`: run benchmarks and print their figures."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import shlex
import sys
import time
from typing import Any

from bench.stats import machine, show

BENCHMARKS = {
    "ack": ("bench.ack", "1. acknowledgement under a burst of slash commands"),
    "fal": ("bench.falreq", "2. requests to fal per job (vs fal-client subscribe)"),
    "delivery": ("bench.delivery", "3. delivery overhead from COMPLETED to the post"),
    "fit": ("bench.fit", "4. fit-to-limit re-encode and loop lag meanwhile"),
    "scale": ("bench.scale", "5. 1,000 jobs in flight in one process"),
    "quota": ("bench.quota", "6. quota reservations per second on SQLite WAL"),
    "intake": ("bench.intake", "7. intake memory: 20 members × 10 six-image commands at once"),
    "views": ("bench.views", "8. discord.py's view store after 1,000 jobs"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks against the fake Discord and the fal emulator on 127.0.0.1. "
        + "; ".join(f"{name}: {about}" for name, (_, about) in BENCHMARKS.items()),
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="benchmarks to run (default: all), in order"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small scale and short waits, to check the scripts"
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5, quick 2)")
    return parser


async def _run(names: list[str], *, quick: bool, reps: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in names:
        module = importlib.import_module(BENCHMARKS[name][0])
        started = time.monotonic()
        print(f"\n-- {name}: {BENCHMARKS[name][1]}", flush=True)
        results[name] = await module.run(quick=quick, reps=reps)
        print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    reps = args.reps or (2 if args.quick else 5)
    # The fake's and the emulator's own logs are noise here; their warnings still show.
    logging.basicConfig(level=logging.WARNING)
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    show("machine", [*machine().items(), ("command", command)])
    asyncio.run(_run(names, quick=args.quick, reps=reps))
    show("machine after the run", [("load average", machine()["load average (1/5/15 min)"])])
    return 0


if __name__ == "__main__":
    sys.exit(main())
