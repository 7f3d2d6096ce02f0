"""Whole-suite security checks (issue 6 item 4): every log record, Discord request, gateway frame,
fal submission and bot log file of the session is searched for the suite's secrets, and every
message the bot writes for allowed_mentions; the session fails at its end on any finding."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.emulator import FalEmulator
from bot.sandbox.fakediscord import FakeDiscord
from tests.secrets import KNOWN, SHAPES
from tests.security.scan import LeakScan, MentionCheck, ScanHandler, scan_files

# What the bot leaves on disk in a test's tmp folder: crash tests' subprocess output, sandbox
# transcripts, and databases (which must hold no token or key either).
FILES = ("bot.log", "*.log", "transcript.md", "*.sqlite3", "*.sqlite3-wal")


_ROOT_LEVEL = pytest.StashKey[int]()
# What the checks covered, printed at the end of the run so a reader sees they ran.
_summary: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _summary:
        terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    # The scan lowers the root logger to DEBUG (libraries log request details there). Reports
    # of failing tests and caplog keep showing WARNING and up, as before, unless asked otherwise.
    if config.getoption("log_level") is None and not config.getini("log_level"):
        config.option.log_level = "WARNING"
    # Here rather than in the fixture: pytest restores the root level after each setup phase.
    config.stash[_ROOT_LEVEL] = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)


def pytest_unconfigure(config: pytest.Config) -> None:
    logging.getLogger().setLevel(config.stash.get(_ROOT_LEVEL, logging.WARNING))


@pytest.fixture(scope="session", autouse=True)
def whole_suite_security_checks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    scan = LeakScan(KNOWN, SHAPES)
    mentions = MentionCheck()

    def on_fake(fake: FakeDiscord) -> None:
        scan.fake(fake)
        mentions.fake(fake)

    root = logging.getLogger()
    handler = ScanHandler(scan)
    root.addHandler(handler)
    FakeDiscord.on_close.append(on_fake)
    FalEmulator.on_close.append(scan.fal)
    try:
        yield
    finally:
        FakeDiscord.on_close.remove(on_fake)
        FalEmulator.on_close.remove(scan.fal)
        root.removeHandler(handler)
    files = scan_files(scan, [tmp_path_factory.getbasetemp()], FILES)
    _summary.append(
        f"whole-suite security checks: {scan.scanned} texts and {files} files searched for "
        f"{len(KNOWN)} secrets, {mentions.checked} bot messages checked for allowed_mentions"
    )
    problems: list[str] = []
    if scan.leaks:
        problems.append(f"secrets leaked ({len(scan.leaks)}):\n{scan.report()}")
    if mentions.problems:
        problems.append(f"messages without safe allowed_mentions:\n{mentions.report()}")
    if problems:
        pytest.fail("whole-suite security checks failed:\n" + "\n\n".join(problems), False)
