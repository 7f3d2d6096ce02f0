"""Every bot token and fal key the suite hands out, in one place, so the whole-suite scan
(tests/conftest.py) knows exactly what must never appear in a log line or a message."""

from __future__ import annotations

import re
from typing import NamedTuple


class Credentials(NamedTuple):
    discord_token: str
    fal_key: str


# Distinct per harness, so a leak report says which harness leaked. Long and unusual, so a
# match is never a coincidence.
E2E = Credentials("e2e-discord-token-Zm9vYmFyLnNlY3JldA", "e2e-fal-key-c2VjcmV0LWZhbA")
CRASH = Credentials("crash-discord-token-Y3Jhc2hzZWNyZXQ", "crash-fal-key-ZmFsc2VjcmV0a2V5")
CHECK = Credentials("check-discord-token-c2VjcmV0LWRpc2NvcmQ", "check-fal-key-c2VjcmV0LWZhbA")
FAKE_DISCORD_TOKEN = "fake-bot-token-never-logged"
HOLD_TOKEN = "hold-test-token"

KNOWN: dict[str, str] = {
    "e2e DISCORD_TOKEN": E2E.discord_token,
    "e2e FAL_KEY": E2E.fal_key,
    "crash DISCORD_TOKEN": CRASH.discord_token,
    "crash FAL_KEY": CRASH.fal_key,
    "check DISCORD_TOKEN": CHECK.discord_token,
    "check FAL_KEY": CHECK.fal_key,
    "fake Discord TOKEN": FAKE_DISCORD_TOKEN,
    "hold TOKEN": HOLD_TOKEN,
}

# The sandbox makes its own per run ("sandbox-" + secrets.token_urlsafe(24), bot/sandbox/run.py),
# so it is known by its shape. (tests/test_logs.py plants secrets on purpose: they are not here.)
SHAPES: dict[str, re.Pattern[str]] = {
    "sandbox token or key": re.compile(
        r"(?<![A-Za-z0-9_-])sandbox-[A-Za-z0-9_-]{32}(?![A-Za-z0-9_-])"
    ),
}
