"""The fal emulator's command-line options and run (`python -m bot fal-emulator`)."""

from __future__ import annotations

import argparse
import os

from bot.emulator.render import PreviewSettings
from bot.emulator.scripts import JobScript
from bot.emulator.server import serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options (all with defaults) to a parser or subcommand parser."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8790, help="port to listen on (0: any free)")
    parser.add_argument(
        "--key",
        default=None,
        help="the only fal key to accept (default: $FAL_KEY if set, else any key)",
    )
    parser.add_argument("--queue-seconds", type=float, default=1.0, help="time each job queues")
    parser.add_argument("--queue-position", type=int, default=2, help="first queue position")
    parser.add_argument("--run-seconds", type=float, default=3.0, help="time each job runs")
    parser.add_argument("--concurrency", type=int, default=None, help="jobs IN_PROGRESS at once")
    parser.add_argument("--keepalive", type=float, default=15.0, help="SSE keep-alive seconds")
    parser.add_argument("--short-side", type=int, default=360, help="preview short side in px")
    parser.add_argument("--fps", type=int, default=12, help="preview frames per second")
    parser.add_argument("--seconds", type=float, default=3.0, help="preview length in seconds")
    parser.add_argument(
        "--no-control", action="store_true", help="do not serve the /_emulator/ control endpoints"
    )


async def run(args: argparse.Namespace) -> None:
    """Serve with the parsed options until cancelled (Ctrl-C)."""
    key = args.key if args.key is not None else os.environ.get("FAL_KEY") or None
    await serve(
        args.host,
        args.port,
        key,
        preview=PreviewSettings(short_side=args.short_side, fps=args.fps, seconds=args.seconds),
        keepalive_seconds=args.keepalive,
        control=not args.no_control,
        concurrency=args.concurrency,
        default_script=JobScript(
            queue_seconds=args.queue_seconds,
            queue_position=args.queue_position,
            run_seconds=args.run_seconds,
        ),
        ready=lambda base: print(f"fal emulator listening on {base}", flush=True),
    )
