"""The command line: `python -m bot` / `pikabot` with run, check, sync, fal-emulator and sandbox."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx

from bot.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from bot.app import PikaBot

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pikabot", description="A Discord bot that makes videos with Pika on fal.ai."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="start the bot (the default)")
    commands.add_parser(
        "check", help="validate the configuration and the database, print the effective limits"
    )
    sync = commands.add_parser("sync", help="sync the slash commands now, changed or not")
    sync.add_argument(
        "--guild", type=int, default=None, help="sync to one server only (instant; for testing)"
    )
    emulator = commands.add_parser(
        "fal-emulator", help="run the local fal emulator (no account, no money spent)"
    )
    from bot.emulator.cli import add_arguments

    add_arguments(emulator)
    return parser


async def _check(settings: Settings) -> int:
    from bot.pika import price_table
    from bot.store import Store

    async with await Store.open(settings.database) as store:
        version = await store.schema_version()
    print(f"configuration: ok\ndatabase: {settings.database} (schema version {version})")
    print(f"fal: queue {settings.fal_queue_url}, storage {settings.fal_rest_url}")
    print(f"fal key: {'set' if settings.fal_key else 'MISSING (FAL_KEY)'}")
    print(f"discord token: {'set' if settings.discord_token else 'MISSING (DISCORD_TOKEN)'}")
    print(
        f"limits: {settings.daily_allowance} credits per member per day "
        f"(resets {settings.reset_hour:02d}:00 UTC), "
        f"server budget {settings.guild_daily_budget}/day, global budget "
        f"{settings.global_daily_budget}/day, {settings.max_jobs_per_member} unfinished jobs per "
        f"member, {settings.fal_concurrency} jobs at fal at once"
    )
    print("prices (credits):")
    for row in price_table(settings.prices):
        unit = "per second" if row.per_second else "per video"
        print(f"  {row.endpoint.id:40} {row.label:18} {row.credits:>4} {unit}")
    return 0


def _secrets(settings: Settings) -> tuple[str, str]:
    missing = [
        name
        for name, value in (
            ("DISCORD_TOKEN", settings.discord_token),
            ("FAL_KEY", settings.fal_key),
        )
        if value is None or not value.get_secret_value().strip()
    ]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} must be set in the environment to run the bot "
            "(try `python -m bot fal-emulator` to test without a fal account)"
        )
    assert settings.discord_token is not None
    assert settings.fal_key is not None
    return settings.discord_token.get_secret_value(), settings.fal_key.get_secret_value()


@asynccontextmanager
async def _bot(settings: Settings, *, run_jobs: bool = True) -> AsyncIterator[PikaBot]:
    """The bot with everything it depends on, all closed on the way out."""
    from bot.app import PikaBot, point_discord_at
    from bot.fal import FalClient
    from bot.store import Store

    _, fal_key = _secrets(settings)
    point_discord_at(settings.discord_api_url, settings.discord_gateway_url)
    async with (
        await Store.open(settings.database) as store,
        httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http,
        FalClient(settings.fal_queue_url, settings.fal_rest_url, fal_key, http=http) as fal,
    ):
        bot = PikaBot(settings=settings, store=store, fal=fal, http=http, run_jobs=run_jobs)
        async with bot:
            yield bot


async def _run(settings: Settings) -> int:
    token, _ = _secrets(settings)
    async with _bot(settings) as bot:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(bot.close()))
        await bot.start(token)
    return 0


async def _sync(settings: Settings, guild_id: int | None) -> int:
    token, _ = _secrets(settings)
    async with _bot(settings, run_jobs=False) as bot:
        await bot.login(token)
        await bot.sync_commands(force=True, guild_id=guild_id)
    print(f"commands synced {'to guild ' + str(guild_id) if guild_id else 'globally'}")
    return 0


async def _fal_emulator(args: argparse.Namespace) -> int:
    from bot.emulator.cli import run

    await run(args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        if args.command == "fal-emulator":
            return asyncio.run(_fal_emulator(args))
        settings = load_settings()
        logging.getLogger().setLevel(settings.log_level)
        if args.command == "check":
            return asyncio.run(_check(settings))
        if args.command == "sync":
            return asyncio.run(_sync(settings, args.guild))
        return asyncio.run(_run(settings))
    except ConfigError as exc:
        print(f"pikabot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
