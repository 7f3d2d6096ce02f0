"""The input cache keeps bytes by sha256, bounded by age and size, and names no other path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bot.media import InputCache


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_cache(
    root: Path, clock: Clock, *, max_bytes: int = 10_000, max_age: float = 100
) -> InputCache:
    return InputCache(root, max_bytes=max_bytes, max_age_seconds=max_age, clock=clock)


def test_put_returns_the_sha256_and_get_returns_the_bytes(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, Clock())
    sha = cache.put(b"picture")
    assert sha == hashlib.sha256(b"picture").hexdigest()
    assert cache.get(sha) == b"picture"
    assert cache.path(sha).read_bytes() == b"picture"
    assert sha in cache


def test_put_is_idempotent_and_leaves_no_temp_files(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, Clock())
    first = cache.put(b"same")
    second = cache.put(b"same")
    assert first == second
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == [first]


def test_get_of_an_unknown_key_is_none(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, Clock())
    assert cache.get("0" * 64) is None


@pytest.mark.parametrize(
    "key",
    [
        "../secret",
        "../../etc/passwd",
        "../" + "a" * 61,
        "/etc/passwd",
        "A" * 64,
        "g" * 64,
        "ab",
        "",
        "a" * 65,
    ],
)
def test_keys_that_are_not_sha256_hex_name_no_path(tmp_path: Path, key: str) -> None:
    root = tmp_path / "cache"
    secret = tmp_path / "secret"
    secret.write_bytes(b"do not serve")
    cache = make_cache(root, Clock())
    assert cache.get(key) is None
    assert key not in cache
    with pytest.raises(ValueError, match="64 lowercase hex"):
        cache.path(key)


def test_prune_removes_entries_unused_for_longer_than_max_age(tmp_path: Path) -> None:
    clock = Clock()
    cache = make_cache(tmp_path, clock, max_age=100)
    old = cache.put(b"old")
    clock.now += 60
    fresh = cache.put(b"fresh")
    clock.now += 50  # old is 110 s unused, fresh 50 s
    assert cache.prune() == 1
    assert cache.get(old) is None
    assert cache.get(fresh) == b"fresh"
    assert not cache.path(old).with_name(old + ".type").exists()


def test_get_refreshes_use_so_age_counts_from_last_use(tmp_path: Path) -> None:
    clock = Clock()
    cache = make_cache(tmp_path, clock, max_age=100)
    sha = cache.put(b"reused")
    clock.now += 90
    assert cache.get(sha) == b"reused"
    clock.now += 90  # 180 s after put, 90 s after the last use
    assert cache.prune() == 0
    assert cache.get(sha) == b"reused"


def test_prune_drops_least_recently_used_until_under_max_bytes(tmp_path: Path) -> None:
    clock = Clock()
    cache = make_cache(tmp_path, clock, max_bytes=250, max_age=10_000)
    shas = []
    for index in range(3):
        clock.now += 1
        shas.append(cache.put(bytes([index]) * 100))
    clock.now += 1
    cache.get(shas[0])  # the first is now the most recently used
    assert cache.total_bytes() == 300
    assert cache.prune() == 1
    assert cache.get(shas[1]) is None
    assert cache.get(shas[0]) is not None
    assert cache.get(shas[2]) is not None
    assert cache.total_bytes() == 200


def test_prune_of_a_missing_root_removes_nothing(tmp_path: Path) -> None:
    cache = make_cache(tmp_path / "not-yet", Clock())
    assert cache.prune() == 0


def test_prune_clears_the_type_files_earlier_versions_wrote(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, Clock())
    sha = cache.put(b"kept")
    legacy = cache.path(sha).with_name(sha + ".type")
    legacy.write_text("image/png")
    assert cache.prune() == 0
    assert not legacy.exists()
    assert cache.get(sha) == b"kept"


def test_prune_clears_debris_of_interrupted_writes(tmp_path: Path) -> None:
    clock = Clock(now=4_000_000_000.0)  # far after the real mtimes of the files below
    cache = make_cache(tmp_path, clock, max_age=100)
    shard = tmp_path / "ab"
    shard.mkdir()
    (shard / ".tmp-crashed").write_bytes(b"half")
    (shard / ("ab" + "0" * 62 + ".type")).write_text("image/png")
    cache.prune()
    assert list(shard.iterdir()) == []
