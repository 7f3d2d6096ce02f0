"""Configuration: defaults, environment and TOML, errors that name the setting, secrets kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PIKABOT_") or name in {"DISCORD_TOKEN", "FAL_KEY"}:
            monkeypatch.delenv(name)


def test_defaults_follow_the_product_spec() -> None:
    settings = load_settings()
    assert settings.database == Path("data/pikabot.sqlite3")
    assert settings.fal_queue_url == "https://queue.fal.run"
    assert settings.fal_rest_url == "https://rest.fal.ai"
    assert settings.discord_api_url == "https://discord.com/api/v10"
    assert settings.daily_allowance == 100
    assert settings.reset_hour == 0
    assert settings.guild_daily_budget == 1000
    assert settings.global_daily_budget == 5000
    assert settings.max_jobs_per_member == 2
    assert settings.fal_concurrency == 4
    assert settings.discord_token is None
    assert settings.fal_key is None


def test_environment_sets_values_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIKABOT_FAL_CONCURRENCY", "8")
    monkeypatch.setenv("PIKABOT_DATABASE", "/tmp/x.sqlite3")
    monkeypatch.setenv("PIKABOT_FAL_QUEUE_URL", "http://127.0.0.1:9000/")
    settings = load_settings()
    assert settings.fal_concurrency == 8
    assert settings.database == Path("/tmp/x.sqlite3")
    assert settings.fal_queue_url == "http://127.0.0.1:9000"


def test_secrets_come_from_unprefixed_variables_and_never_print(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "discord-secret-value")
    monkeypatch.setenv("FAL_KEY", "fal-secret-value")
    settings = load_settings()
    assert settings.discord_token is not None
    assert settings.fal_key is not None
    assert settings.discord_token.get_secret_value() == "discord-secret-value"
    assert settings.fal_key.get_secret_value() == "fal-secret-value"
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "discord-secret-value" not in shown
    assert "fal-secret-value" not in shown


def test_a_bad_value_names_the_setting_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIKABOT_FAL_CONCURRENCY", "0")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "PIKABOT_FAL_CONCURRENCY" in str(info.value)
    assert "greater than or equal to 1" in str(info.value)


def test_every_bad_setting_is_listed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIKABOT_RESET_HOUR", "24")
    monkeypatch.setenv("PIKABOT_LOG_FORMAT", "xml")
    monkeypatch.setenv("PIKABOT_FAL_QUEUE_URL", "ftp://nowhere")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "PIKABOT_RESET_HOUR" in message
    assert "PIKABOT_LOG_FORMAT" in message
    assert "'text' or 'json'" in message
    assert "PIKABOT_FAL_QUEUE_URL: must be an http:// or https:// URL" in message


def test_a_misspelt_variable_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIKABOT_FAL_CONCURENCY", "8")
    with pytest.raises(ConfigError, match="PIKABOT_FAL_CONCURENCY: is not a known setting"):
        load_settings()


def test_the_test_suites_own_variables_are_not_taken_for_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The tests find PostgreSQL through PIKABOT_TEST_POSTGRES; the bot must still start.
    monkeypatch.setenv("PIKABOT_TEST_POSTGRES", "postgresql://tests@127.0.0.1:5432/pikabot")
    monkeypatch.setenv("PIKABOT_TEST_E2E_BACKEND", "postgresql")
    assert load_settings().fal_concurrency >= 1


def test_toml_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "pikabot.toml"
    config.write_text("daily_allowance = 250\nfal_concurrency = 6\n[prices]\nflat = 30\n")
    monkeypatch.setenv("PIKABOT_CONFIG", str(config))
    monkeypatch.setenv("PIKABOT_FAL_CONCURRENCY", "3")
    settings = load_settings()
    assert settings.daily_allowance == 250
    assert settings.fal_concurrency == 3
    assert settings.prices.flat == 30


def test_toml_typo_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "pikabot.toml"
    config.write_text("daily_alowance = 250\n")
    monkeypatch.setenv("PIKABOT_CONFIG", str(config))
    with pytest.raises(ConfigError, match="PIKABOT_DAILY_ALOWANCE: is not a known setting"):
        load_settings()


def test_secrets_in_the_toml_file_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "pikabot.toml"
    config.write_text('fal_key = "abc"\n')
    monkeypatch.setenv("PIKABOT_CONFIG", str(config))
    with pytest.raises(ConfigError, match="FAL_KEY must come from the environment") as info:
        load_settings()
    assert "abc" not in str(info.value)


def test_missing_or_broken_toml_file_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIKABOT_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()
    broken = tmp_path / "broken.toml"
    broken.write_text("daily_allowance = = 3\n")
    monkeypatch.setenv("PIKABOT_CONFIG", str(broken))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_nested_price_override_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIKABOT_PRICES__FLAT", "25")
    assert load_settings().prices.flat == 25


def test_a_secret_under_its_variable_name_in_the_toml_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "pikabot.toml"
    config.write_text('DISCORD_TOKEN = "discord-secret-value"\n')
    monkeypatch.setenv("PIKABOT_CONFIG", str(config))
    with pytest.raises(ConfigError, match="DISCORD_TOKEN must come from the environment") as info:
        load_settings()
    assert "discord-secret-value" not in str(info.value)


def test_explicit_values_win_over_the_file_and_the_environment_over_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "pikabot.toml"
    config.write_text("daily_allowance = 250\nreset_hour = 5\nmax_jobs_per_member = 3\n")
    monkeypatch.setenv("PIKABOT_CONFIG", str(config))
    monkeypatch.setenv("PIKABOT_RESET_HOUR", "7")
    settings = load_settings(daily_allowance=300, reset_hour=6)
    assert settings.daily_allowance == 300
    assert settings.reset_hour == 7
    assert settings.max_jobs_per_member == 3


def test_a_toml_table_merges_with_a_nested_environment_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "pikabot.toml"
    config.write_text(
        '[prices]\nflat = 30\n[prices.clip_5s]\n"480p" = 12\n"720p" = 22\n"1080p" = 47\n'
    )
    monkeypatch.setenv("PIKABOT_CONFIG", str(config))
    monkeypatch.setenv("PIKABOT_PRICES__FLAT", "25")
    prices = load_settings().prices
    assert prices.flat == 25
    assert prices.clip_5s["480p"] == 12


def test_a_bad_value_in_the_toml_file_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "pikabot.toml"
    config.write_text("fal_concurrency = 0\n")
    monkeypatch.setenv("PIKABOT_CONFIG", str(config))
    with pytest.raises(ConfigError, match=r"PIKABOT_FAL_CONCURRENCY: .*greater than or equal to 1"):
        load_settings()
