"""`python -m bot.emulator`: run the local fal emulator on its own."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from bot.emulator.cli import add_arguments, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.emulator", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
