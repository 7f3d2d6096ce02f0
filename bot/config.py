"""Every setting of the bot in one validated object: environment, optional TOML file, defaults."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.pika.prices import PriceList
from bot.store.backends import DEFAULT_POOL_SIZE, PostgresUrl, database_location

ENV_PREFIX = "PIKABOT_"
CONFIG_ENV = "PIKABOT_CONFIG"
SECRET_ENV = {"discord_token": "DISCORD_TOKEN", "fal_key": "FAL_KEY"}

MiB = 1024 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ConfigError(Exception):
    """The configuration cannot be used; the message names each bad setting and what is allowed."""


class Settings(BaseSettings):
    """The bot's configuration. Build it with `load_settings()` so errors read well."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
        validate_default=True,
    )

    # Secrets: only from the environment (never from the TOML file), never printed.
    discord_token: SecretStr | None = Field(default=None, validation_alias="DISCORD_TOKEN")
    fal_key: SecretStr | None = Field(default=None, validation_alias="FAL_KEY")

    # Storage: an SQLite file (a path or sqlite:///path) or a postgresql:// URL, whose password
    # (or PGPASSWORD's) is never shown; PostgreSQL is reached through a pool of this many
    # connections per process.
    database: Path | PostgresUrl = Path("data/pikabot.sqlite3")
    database_pool_size: int = Field(default=DEFAULT_POOL_SIZE, ge=1, le=1000)
    data_dir: Path = Path("data")

    # fal.
    fal_queue_url: str = "https://queue.fal.run"
    fal_rest_url: str = "https://rest.fal.ai"
    fal_concurrency: int = Field(default=4, ge=1, le=1000)
    # Set to have fal call back when a job finishes (the stream and polling stay the fallback).
    # The bot receives the calls on fal_webhook_host:fal_webhook_port at /fal/webhook; a reverse
    # proxy publishes that at this URL.
    fal_webhook_url: str | None = None
    fal_webhook_host: str = "127.0.0.1"
    fal_webhook_port: int = Field(default=8091, ge=1, le=65535)
    # Hosts result videos may be downloaded from: an exact host, or a suffix starting with a dot.
    download_hosts: list[str] = Field(default_factory=lambda: [".fal.media", ".fal.run", ".fal.ai"])
    # Inputs at most this big reach fal inline as data URIs; larger ones go through fal storage.
    data_uri_max_bytes: int = Field(default=512 * 1024, ge=0, le=20 * MiB)
    # After this long a job is given up: cancelled at fal and refunded.
    job_deadline_seconds: int = Field(default=3600, ge=60)
    # A job fal has not finalised this long after it was accepted (even after the deadline's
    # cancel) ends refunded and written off (fal may bill it); unset: twice the deadline.
    job_hard_deadline_seconds: int | None = Field(default=None, ge=60)

    # Discord.
    discord_api_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    progress_interval: float = Field(default=5.0, ge=1.0, le=300.0)
    default_upload_limit: int = Field(default=10 * MiB, ge=1 * MiB)
    # Hosts members' attachments may be downloaded from (exact, or a suffix starting with a dot).
    discord_cdn_hosts: list[str] = Field(
        default_factory=lambda: ["cdn.discordapp.com", "media.discordapp.net"]
    )
    # Commands whose files are downloaded and checked at once (each one file at a time).
    intake_concurrency: int = Field(default=4, ge=1, le=64)

    # Money and fairness (PRODUCT.md §3). One credit is one US cent by default.
    prices: PriceList = Field(default_factory=PriceList)
    daily_allowance: int = Field(default=100, ge=0)
    reset_hour: int = Field(default=0, ge=0, le=23)
    guild_daily_budget: int = Field(default=1000, ge=0)
    global_daily_budget: int = Field(default=5000, ge=0)
    max_jobs_per_member: int = Field(default=2, ge=1, le=100)

    # Disk bounds.
    cache_max_bytes: int = Field(default=2 * 1024 * MiB, ge=10 * MiB)
    cache_max_age_hours: float = Field(default=7 * 24, gt=0)
    output_max_bytes: int = Field(default=200 * MiB, ge=1 * MiB)
    # Downloaded videos (output_dir) are pruned by age and total size, like the input cache.
    videos_max_age_hours: float = Field(default=7 * 24, gt=0)
    videos_max_total_bytes: int = Field(default=5 * 1024 * MiB, ge=10 * MiB)
    prune_interval_minutes: float = Field(default=60, ge=1)
    # Days after which a finished job's prompts, inputs, links and video are cleared (the row
    # stays: the ledger refers to it).
    job_retention_days: int = Field(default=30, ge=1, le=3650)

    # Operations.
    http_port: int | None = Field(default=None, ge=1, le=65535)
    # Where the health/metrics endpoint listens; 0.0.0.0 in a container so others can scrape it.
    http_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("fal_queue_url", "fal_rest_url", "discord_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("discord_gateway_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must be a ws:// or wss:// URL")
        return value

    @field_validator("fal_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is None or value.startswith("https://"):
            return value
        # Plain HTTP only reaches this machine: the fal emulator in tests and the sandbox.
        if value.startswith("http://") and urlsplit(value).hostname in LOOPBACK_HOSTS:
            return value
        raise ValueError("must be a public https:// URL fal can reach")

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: object) -> object:
        return database_location(value) if isinstance(value, str | Path) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def output_dir(self) -> Path:
        return self.data_dir / "videos"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over explicit values, which win over the TOML file.
        config_file = os.environ.get(CONFIG_ENV)
        if not config_file:
            return (env_settings, init_settings)
        return (env_settings, init_settings, TomlFileSource(settings_cls, Path(config_file)))


class TomlFileSource(TomlConfigSettingsSource):
    """pydantic-settings' TOML source for the file PIKABOT_CONFIG names; it must hold no secret.

    Unlike the library's source, a missing file is an error: the operator named it.
    """

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        if not path.exists():
            raise ConfigError(f"{CONFIG_ENV}: the file {path} does not exist")
        try:
            super().__init__(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{CONFIG_ENV}: {path} is not valid TOML: {exc}") from None
        for secret, variable in SECRET_ENV.items():
            if {secret, variable, variable.lower()} & self.toml_data.keys():
                raise ConfigError(
                    f"{path}: {variable} must come from the environment, never from a file "
                    "(files end up in backups and repositories)"
                )


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable an error location refers to, e.g. PIKABOT_PRICES__FLAT."""
    first = str(loc[0]) if loc else ""
    if first in SECRET_ENV:
        return SECRET_ENV[first]
    if first in SECRET_ENV.values():
        return first
    return ENV_PREFIX + "__".join(str(part) for part in loc).upper()


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    name = env_name(loc)
    message = str(error.get("msg", "is invalid"))
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return f"{name}: is not a known setting (check its spelling)"
    shown = error.get("input")
    secret = bool(loc) and str(loc[0]) in {*SECRET_ENV, *SECRET_ENV.values()}
    if secret or isinstance(shown, dict | list) or shown is None:
        return f"{name}: {message}"
    return f"{name}: {message} (got {shown!r})"


# Variables the test suite reads (tests/postgres.py, tests/e2e/conftest.py); not settings.
TEST_ENV_PREFIX = "PIKABOT_TEST_"


def _unknown_env(environ: Mapping[str, str]) -> list[str]:
    known = {name.upper() for name in Settings.model_fields}
    problems = []
    for variable in environ:
        if not variable.startswith(ENV_PREFIX) or variable == CONFIG_ENV:
            continue
        if variable.startswith(TEST_ENV_PREFIX):
            continue  # the test suite's own (e.g. PIKABOT_TEST_POSTGRES), never the bot's
        field = variable.removeprefix(ENV_PREFIX).split("__", 1)[0]
        if field not in known:
            problems.append(f"{variable}: is not a known setting (check its spelling)")
    return problems


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment, the TOML file it names, and explicit overrides.

    The environment wins over the overrides, and they over the file. Raises ConfigError listing
    every bad setting by the name the operator set it under.
    """
    problems = _unknown_env(os.environ)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    if problems:
        raise ConfigError("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
    return settings
