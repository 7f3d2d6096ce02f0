"""A fake Discord (REST, gateway, CDN on 127.0.0.1) that unmodified discord.py runs against."""

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
