"""`python -m bot check`: configuration, database, fal key and endpoints, Discord login and
permissions, limits and prices; non-zero with a clear reason when anything is wrong."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import discord
import httpx

from bot import __version__
from bot.config import Settings
from bot.fal import (
    FalAuthError,
    FalClient,
    FalError,
    FalNotFound,
    FalTimeouts,
    FalUnavailable,
    FalValidationError,
    RetryPolicy,
)
from bot.ops.permissions import NEEDED
from bot.pika import ENDPOINTS, price_table
from bot.store import PostgresUrl, Store, StoreError, bundled_migrations
from bot.store.backends import backend_name, shown

# The invite asks for, and `check` wants in every server, what the bot needs in any channel.
BOT_PERMISSIONS = NEEDED
INVITE_SCOPES = ("bot", "applications.commands")
GUILDS_PAGE = 200


def bot_permissions() -> discord.Permissions:
    """Exactly the permissions the bot asks for when invited."""
    return discord.Permissions(**{attr: True for attr, _ in BOT_PERMISSIONS})


def invite_url(client_id: int) -> str:
    """The OAuth2 URL that adds the bot to a server with exactly the permissions it needs."""
    return discord.utils.oauth_url(client_id, permissions=bot_permissions(), scopes=INVITE_SCOPES)


def client_id_from_token(token: str) -> int | None:
    """The bot's user id, which a bot token carries base64-encoded in its first part."""
    head = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(decoded) if decoded.isdigit() else None


def missing_permissions(permissions: discord.Permissions) -> list[str]:
    """The needed permissions these lack, by their names in Discord's settings."""
    if permissions.administrator:
        return []
    return [name for attr, name in BOT_PERMISSIONS if not getattr(permissions, attr)]


@dataclass
class Report:
    """The check's output as it goes, and every failure for the closing verdict."""

    out: TextIO
    failures: list[str] = field(default_factory=list)

    def line(self, text: str) -> None:
        print(text, file=self.out)

    def fail(self, text: str) -> None:
        """A problem that stops the bot from working as configured."""
        self.failures.append(text)
        print(f"  FAILED: {text}", file=self.out)


def _secret(value: Any) -> str | None:
    text = value.get_secret_value().strip() if value is not None else ""
    return text or None


async def check_database(settings: Settings, report: Report) -> bool:
    """Open the database, applying pending migrations, as `run` would; say which backend it is,
    its version, and whether its migrations are current."""
    where = f"database: {backend_name(settings.database)} {shown(settings.database)}"
    try:
        if isinstance(settings.database, PostgresUrl):
            state = await _postgres_state(settings.database)
        else:
            state = await _sqlite_state(settings.database)
    except _database_errors(settings) as error:
        report.line(where)
        report.fail(f"the database cannot be opened: {error}")
        return False
    server, version, newest = state
    if version < newest:
        report.line(f"{where} ({server}, schema version {version})")
        report.fail(f"the database's migrations are not current: {version} of {newest} applied")
        return False
    report.line(f"{where} ({server}, schema version {version}, migrations current)")
    return True


async def _sqlite_state(path: Path) -> tuple[str, int, int]:
    """SQLite's library version, the schema version after opening, the newest bundled one."""
    async with await Store.open(path) as store:
        version = await store.meta.schema_version()
    # aiosqlite runs the standard library's sqlite3, so this is the library the bot uses.
    return f"SQLite {sqlite3.sqlite_version}", version, bundled_migrations()[-1].version


async def _postgres_state(url: PostgresUrl) -> tuple[str, int, int]:
    """The server's version, the schema version after opening, the newest bundled one."""
    from bot.store.postgres import schema
    from bot.store.postgres.db import PgDatabase

    # One connection: the check asks three questions, one after another.
    db = await PgDatabase.open(url.get_secret_value(), min_size=1, max_size=1)
    try:
        server = await db.server_version()
        version = await db.schema_version()
    finally:
        await db.close()
    return f"PostgreSQL {server}", version, schema.bundled_migrations()[-1].version


def _database_errors(settings: Settings) -> tuple[type[Exception], ...]:
    """What opening the configured database raises when it cannot be used."""
    errors: tuple[type[Exception], ...] = (StoreError, OSError, sqlite3.Error)
    if isinstance(settings.database, PostgresUrl):
        import asyncpg

        # InterfaceError: the client's side (a malformed DSN among them); PostgresError: the
        # server's (a refused password, a missing database, a failed migration).
        errors = (*errors, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError)
    return errors


async def check_fal(
    settings: Settings,
    report: Report,
    *,
    http: httpx.AsyncClient,
    endpoints: Sequence[str] | None = None,
) -> None:
    """Ask each Pika endpoint to run an empty request: fal refuses it (422) without charging
    anything, which proves both that the key is accepted and that the endpoint exists."""
    report.line(f"fal: queue {settings.fal_queue_url}, storage {settings.fal_rest_url}")
    key = _secret(settings.fal_key)
    if key is None:
        report.fail("FAL_KEY is not set in the environment")
        return
    ids = list(endpoints) if endpoints is not None else [e.id for e in ENDPOINTS]
    fal = FalClient(
        settings.fal_queue_url,
        settings.fal_rest_url,
        key,
        http=http,
        timeouts=FalTimeouts(connect=5, read=15, write=15, pool=5),
        retry=RetryPolicy(max_attempts=2, base_delay=0.2, max_delay=1.0),
    )
    # The first endpoint alone: a refused key or an unreachable fal ends the fal part.
    first = await _probe(fal, ids[0])
    if isinstance(first, FalAuthError):
        report.fail(f"fal refused FAL_KEY (HTTP {first.status}): check the key at fal.ai")
        return
    if isinstance(first, FalUnavailable):
        report.fail(f"fal could not be reached at {settings.fal_queue_url}")
        return
    rest = await asyncio.gather(*(_probe(fal, endpoint_id) for endpoint_id in ids[1:]))
    answered = 0
    for endpoint_id, outcome in zip(ids, [first, *rest], strict=True):
        if outcome is None:
            answered += 1
            report.line(f"  {endpoint_id}: answers")
        elif isinstance(outcome, FalNotFound):
            report.fail(f"{endpoint_id}: fal does not know this endpoint (404); its mode is off")
        elif isinstance(outcome, str):
            report.line(f"  {endpoint_id}: answers ({outcome})")
            answered += 1
        else:
            report.fail(f"{endpoint_id}: {outcome}")
    report.line(f"fal key: accepted ({answered} of {len(ids)} endpoints answer)")


async def _probe(fal: FalClient, endpoint_id: str) -> FalError | str | None:
    """None if the endpoint refused the empty body as fal does; else what went wrong."""
    try:
        handle = await fal.submit(endpoint_id, {})
    except FalValidationError:
        return None
    except FalError as error:
        return error
    # fal took an empty request: stop it before it runs (and bills).
    try:
        await fal.cancel(handle)
    except FalError:
        pass
    return f"it accepted an empty request ({handle.request_id}), cancelled at once"


async def check_discord(settings: Settings, report: Report, *, http: httpx.AsyncClient) -> None:
    """Log in over REST with the token, list the servers and what each lacks."""
    api = settings.discord_api_url
    report.line(f"discord: {api}")
    token = _secret(settings.discord_token)
    if token is None:
        report.fail("DISCORD_TOKEN is not set in the environment")
        return
    headers = {
        "Authorization": f"Bot {token}",
        "User-Agent": f"DiscordBot (https://github.com/pikabot, {__version__})",
    }

    async def get(path: str, params: dict[str, str] | None = None) -> Any:
        response = await http.get(f"{api}{path}", headers=headers, params=params, timeout=15)
        if response.status_code == 401:
            raise _DiscordRefused("Discord refused DISCORD_TOKEN (401): reset it in the portal")
        if response.status_code == 429:
            wait = response.headers.get("Retry-After", "?")
            raise _DiscordRefused(f"Discord is rate limiting this bot; try again in {wait} s")
        if response.status_code != 200:
            raise _DiscordRefused(f"Discord answered {response.status_code} to GET {path}")
        return response.json()

    try:
        me = await get("/users/@me")
        app = await get("/oauth2/applications/@me")
        guilds: list[dict[str, Any]] = []
        while True:
            params = {"limit": str(GUILDS_PAGE)}
            if guilds:
                params["after"] = str(guilds[-1]["id"])
            page = await get("/users/@me/guilds", params)
            guilds.extend(page)
            if len(page) < GUILDS_PAGE:
                break
    except _DiscordRefused as error:
        report.fail(str(error))
        return
    except httpx.HTTPError as error:
        report.fail(f"Discord could not be reached at {api} ({type(error).__name__})")
        return
    report.line(f"discord token: accepted, logged in as {me.get('username')} (id {me.get('id')})")
    url = invite_url(int(app.get("id") or me["id"]))
    report.line(f"invite URL: {url}")
    if not guilds:
        report.line("servers: none yet; invite the bot with the URL above")
        return
    report.line(f"servers: {len(guilds)}")
    for guild in guilds:
        name = f"{guild.get('name')} ({guild.get('id')})"
        missing = missing_permissions(discord.Permissions(int(guild.get("permissions") or 0)))
        if missing:
            report.fail(
                f"server {name} lacks {', '.join(missing)}: grant them to the bot's role, "
                "or re-invite it with the URL above"
            )
        else:
            report.line(f"  {name}: all permissions the bot needs")


class _DiscordRefused(Exception):
    """Discord answered, but not with what the check needed."""


def print_limits(settings: Settings, report: Report) -> None:
    """The effective limits and the price list."""
    report.line(
        f"limits: {settings.daily_allowance} credits per member per day "
        f"(resets {settings.reset_hour:02d}:00 UTC), "
        f"server budget {settings.guild_daily_budget}/day, global budget "
        f"{settings.global_daily_budget}/day, {settings.max_jobs_per_member} unfinished jobs per "
        f"member, {settings.fal_concurrency} jobs at fal at once, unfinished jobs given up "
        f"(and refunded) after {settings.job_deadline_seconds // 60} min; servers' own "
        "allowances, budgets and channels: /pikaadmin limits list"
    )
    report.line(
        f"data: {settings.data_dir} (input cache up to {settings.cache_max_bytes // 2**20} MiB "
        f"for {settings.cache_max_age_hours:g} h, videos up to "
        f"{settings.videos_max_total_bytes // 2**20} MiB for {settings.videos_max_age_hours:g} h)"
    )
    report.line("prices (credits):")
    for row in price_table(settings.prices):
        unit = "per second" if row.per_second else "per video"
        report.line(f"  {row.endpoint.id:40} {row.label:18} {row.credits:>4} {unit}")


async def run_check(
    settings: Settings,
    *,
    offline: bool = False,
    out: TextIO | None = None,
    http: httpx.AsyncClient | None = None,
) -> int:
    """Run every check, print what it finds, and return the exit code (0 only if all passed).

    `offline` skips fal and Discord (no network); the secrets must still be set.
    """
    report = Report(out or sys.stdout)
    report.line("configuration: ok")
    await check_database(settings, report)
    if offline:
        report.line("fal and discord: skipped (--offline)")
        secrets = (("FAL_KEY", settings.fal_key), ("DISCORD_TOKEN", settings.discord_token))
        for name, value in secrets:
            if _secret(value) is None:
                report.fail(f"{name} is not set in the environment")
    else:
        async with contextlib.AsyncExitStack() as stack:
            client = http
            if client is None:
                client = await stack.enter_async_context(
                    httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
                )
            await check_fal(settings, report, http=client)
            await check_discord(settings, report, http=client)
    print_limits(settings, report)
    if report.failures:
        report.line(f"check FAILED ({len(report.failures)} problems):")
        for failure in report.failures:
            report.line(f"  - {failure}")
        return 1
    report.line("check: everything is ready")
    return 0
