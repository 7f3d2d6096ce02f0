"""Discord's OpenAPI description is found beside a checkout, and beside the checkout a local
clone was made from (a fresh `git clone . /tmp/fresh` has no shared folder beside it)."""

from __future__ import annotations

from pathlib import Path

from tests.fakediscord.openapi import origin_candidate

SPEC = Path("shared") / "vendor" / "discord-api-spec" / "openapi.json"


def clone_of(tmp_path: Path, url: str) -> Path:
    clone = tmp_path / "fresh"
    (clone / ".git").mkdir(parents=True)
    (clone / ".git" / "config").write_text(f'[remote "origin"]\n\turl = {url}\n', encoding="utf-8")
    return clone


def test_a_local_clone_finds_the_spec_beside_its_origin(tmp_path: Path) -> None:
    origin = tmp_path / "work" / "main"
    origin.mkdir(parents=True)
    clone = clone_of(tmp_path, str(origin))
    assert origin_candidate(clone) == tmp_path / "work" / SPEC


def test_a_relative_origin_is_taken_from_the_clone(tmp_path: Path) -> None:
    clone = clone_of(tmp_path, "../work/main")
    assert origin_candidate(clone) == tmp_path / "work" / SPEC


def test_a_remote_origin_or_no_origin_gives_no_candidate(tmp_path: Path) -> None:
    assert origin_candidate(clone_of(tmp_path, "https://example.org/pikabot.git")) is None
    assert origin_candidate(clone_of(tmp_path / "b", "git@example.org:pikabot.git")) is None
    assert origin_candidate(tmp_path / "nothing-here") is None
