"""The command line: `python -m bot` / `pikabot` with run, check, sync, fal-emulator and sandbox."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bot.config import ConfigError, Settings, load_settings
from bot.ops.logs import setup_logging
from bot.store.backends import PostgresUrl
from bot.store.lock import DatabaseInUse, DatabaseLock

if TYPE_CHECKING:
    from bot.app import PikaBot

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pikabot", description="A Discord bot that makes videos with Pika on fal.ai."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="start the bot (the default)")
    check = commands.add_parser(
        "check",
        help="validate the configuration and the database, the fal key and endpoints, the "
        "Discord login and permissions; print the effective limits",
    )
    check.add_argument("--offline", action="store_true", help="skip fal and Discord (no network)")
    invite = commands.add_parser(
        "invite", help="print the URL that adds the bot to a server with the permissions it needs"
    )
    invite.add_argument(
        "--client-id", type=int, default=None, help="the application id (default: from the token)"
    )
    forget = commands.add_parser(
        "forget",
        help="delete a member's data in one server (jobs' prompts and videos, cached inputs; "
        "ledger rows anonymised)",
    )
    forget.add_argument("--guild", type=int, required=True, help="the server id")
    forget.add_argument("--user", type=int, required=True, help="the member's user id")
    sync = commands.add_parser("sync", help="sync the slash commands now, changed or not")
    sync.add_argument(
        "--guild", type=int, default=None, help="sync to one server only (instant; for testing)"
    )
    emulator = commands.add_parser(
        "fal-emulator", help="run the local fal emulator (no account, no money spent)"
    )
    from bot.emulator.cli import add_arguments

    add_arguments(emulator)
    sandbox = commands.add_parser(
        "sandbox",
        help="play every mode on this machine with no accounts (fake Discord, fal emulator, "
        "the real bot) and write the videos and a transcript to a folder",
    )
    sandbox.add_argument(
        "--out",
        type=Path,
        default=Path("sandbox-out"),
        help="where to write (default ./sandbox-out)",
    )
    sandbox.add_argument("--small", action="store_true", help="tiny, instant videos (for tests)")
    return parser


async def _check(settings: Settings, *, offline: bool) -> int:
    from bot.ops.check import run_check

    return await run_check(settings, offline=offline)


def _invite(settings: Settings, client_id: int | None) -> int:
    from bot.ops.check import client_id_from_token, invite_url

    if client_id is None and settings.discord_token is not None:
        client_id = client_id_from_token(settings.discord_token.get_secret_value())
    if client_id is None:
        raise ConfigError(
            "the application id is unknown: pass --client-id (Developer Portal, General "
            "Information, Application ID) or set DISCORD_TOKEN"
        )
    print(invite_url(client_id))
    return 0


async def _forget(settings: Settings, guild_id: int, user_id: int) -> int:
    from bot.services import build_retention
    from bot.store import open_store

    async with await open_store(settings) as store:
        report = await build_retention(settings, store).forget(guild_id, user_id)
    print(report.summary())
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
    from bot.services import build_services
    from bot.store import open_store

    _, fal_key = _secrets(settings)
    point_discord_at(settings.discord_api_url, settings.discord_gateway_url)
    async with (
        await open_store(settings) as store,
        httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=10.0),
            # Every job at fal keeps its status stream open: room for all of them plus
            # submits, results and downloads (httpx's default of 100 capped jobs at fal at ~100).
            limits=httpx.Limits(max_connections=settings.fal_concurrency + 100),
        ) as http,
        FalClient(settings.fal_queue_url, settings.fal_rest_url, fal_key, http=http) as fal,
    ):
        services = build_services(settings, store=store, fal=fal, http=http)
        bot = PikaBot(services, run_jobs=run_jobs)
        async with bot:
            yield bot


async def _run(settings: Settings) -> int:
    token, _ = _secrets(settings)
    # Held from before the migrations until the store is closed: a second process on the file
    # would resume every unfinished job beside this one and deliver it twice.
    with _database_lock(settings.database):
        async with _bot(settings) as bot:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, lambda: asyncio.ensure_future(bot.close()))
            await bot.start(token)
    return 0


def _database_lock(database: Path | PostgresUrl) -> AbstractContextManager[object]:
    """The exclusive lock on an SQLite file; an in-memory database is private anyway.

    PostgreSQL has no file to lock: its reservations are safe from several processes (row
    locks, in the store), but two bots resuming the same unfinished jobs is not yet kept
    apart there (that needs claims with leases on the jobs table), so run one per database.
    """
    if isinstance(database, PostgresUrl) or str(database) == ":memory:":
        return nullcontext()
    return DatabaseLock.acquire(database)


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


def _database_secrets(settings: Settings) -> list[str]:
    """The PostgreSQL password, from the URL or PGPASSWORD, for the logs to redact."""
    if not isinstance(settings.database, PostgresUrl):
        return []
    url = settings.database
    return [s for s in (url.get_secret_value(), url.password, os.environ.get("PGPASSWORD")) if s]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(level=logging.INFO)
    try:
        if args.command == "fal-emulator":
            return asyncio.run(_fal_emulator(args))
        if args.command == "sandbox":
            from bot.sandbox.run import main as sandbox

            # The bot's own log would drown the sandbox's summary; warnings still show.
            logging.getLogger().setLevel(logging.WARNING)
            return sandbox(args.out, small=args.small)
        settings = load_settings()
        setup_logging(
            level=settings.log_level,
            fmt=settings.log_format,
            secrets=[
                *(
                    secret.get_secret_value()
                    for secret in (settings.discord_token, settings.fal_key)
                    if secret is not None
                ),
                *_database_secrets(settings),
            ],
        )
        if args.command == "check":
            return asyncio.run(_check(settings, offline=args.offline))
        if args.command == "invite":
            return _invite(settings, args.client_id)
        if args.command == "forget":
            return asyncio.run(_forget(settings, args.guild, args.user))
        if args.command == "sync":
            return asyncio.run(_sync(settings, args.guild))
        return asyncio.run(_run(settings))
    except ConfigError as exc:
        print(f"pikabot: {exc}", file=sys.stderr)
        return 2
    except DatabaseInUse as exc:
        print(f"pikabot: not starting: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
