"""The database lock: one holder at a time, named in the refusal, given back on close."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from bot.store.lock import DatabaseInUse, DatabaseLock, lock_path


def test_a_second_holder_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    database = tmp_path / "data" / "pikabot.sqlite3"
    with DatabaseLock.acquire(database), pytest.raises(DatabaseInUse) as refused:
        DatabaseLock.acquire(database)
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in str(refused.value)
    assert str(database) in str(refused.value)


def test_the_lock_is_given_back_on_close(tmp_path: Path) -> None:
    database = tmp_path / "pikabot.sqlite3"
    DatabaseLock.acquire(database).close()
    with DatabaseLock.acquire(database) as again:
        assert again.path == lock_path(database)
        assert f"pid {os.getpid()}" in again.path.read_text()


def test_another_database_in_the_same_folder_has_its_own_lock(tmp_path: Path) -> None:
    with DatabaseLock.acquire(tmp_path / "a.sqlite3"), DatabaseLock.acquire(tmp_path / "b.sqlite3"):
        pass
