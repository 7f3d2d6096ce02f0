"""The local fal emulator: fal's queue protocol for every Pika endpoint, with real previews."""

from bot.emulator.jobs import Submission, UnknownRequest, WebhookDelivery
from bot.emulator.render import PreviewSettings
from bot.emulator.schemas import ENDPOINTS
from bot.emulator.scripts import Fault, JobScript, ScriptError
from bot.emulator.server import FalEmulator, serve

__all__ = [
    "ENDPOINTS",
    "FalEmulator",
    "Fault",
    "JobScript",
    "PreviewSettings",
    "ScriptError",
    "Submission",
    "UnknownRequest",
    "WebhookDelivery",
    "serve",
]
