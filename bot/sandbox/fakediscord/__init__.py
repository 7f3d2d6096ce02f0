"""A fake Discord (REST, gateway, CDN on 127.0.0.1) that unmodified discord.py runs against.

It is the sandbox's Discord, so it lives under bot/sandbox and ships wherever the sandbox does:
`python -m bot sandbox` from a checkout (`pip install -e .`), from `pip install .`, and in the
Docker image (`docker compose --profile sandbox run --rm sandbox`). The tests and benchmarks
play against the same fake. It needs nothing from tests/ and no dev dependency: checking request
bodies against Discord's OpenAPI description is the tests' concern (tests/fakediscord/openapi.py,
handed in as `FakeDiscord(check_body=...)`), so neither the spec file nor jsonschema ships.
"""

from .clock import MovableClock
from .errors import ApiError, CommandMismatch, FakeDiscordError, NoBotConnected, ValidationFailed
from .fake import FakeDiscord
from .faults import Hold, RandomFault
from .gateway import GatewayFrame, GatewaySession
from .records import (
    FakeInteraction,
    InteractionResponse,
    MessageVersion,
    Pings,
    RecordedRequest,
    StoredAttachment,
    StoredMessage,
    UploadedFile,
)
from .state import BodyCheck
from .world import Channel, Guild, Role, User

__all__ = [
    "ApiError",
    "BodyCheck",
    "Channel",
    "CommandMismatch",
    "FakeDiscord",
    "FakeDiscordError",
    "FakeInteraction",
    "GatewayFrame",
    "GatewaySession",
    "Guild",
    "Hold",
    "InteractionResponse",
    "MessageVersion",
    "MovableClock",
    "NoBotConnected",
    "Pings",
    "RandomFault",
    "RecordedRequest",
    "Role",
    "StoredAttachment",
    "StoredMessage",
    "UploadedFile",
    "User",
    "ValidationFailed",
]
