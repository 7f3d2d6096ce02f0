"""The sandbox's transcript: what the member did and saw in Discord, as readable Markdown."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.media.limits import format_bytes
from bot.sandbox.fakediscord import MessageVersion, StoredMessage

_MENTION = re.compile(r"<@!?(\d+)>")
_CHANNEL = re.compile(r"<#(\d+)>")
_TIMESTAMP = re.compile(r"<t:(\d+)(?::[tTdDfFR])?>")
THINKING = "Pika is thinking…"
BUTTON = 2
LINK_STYLE = 5


def readable(text: str, names: Mapping[int, str]) -> str:
    """Content as a member reads it: mentions by name rather than by id."""
    text = _MENTION.sub(lambda m: "@" + names.get(int(m[1]), "someone"), text)
    text = _CHANNEL.sub(lambda m: "#" + names.get(int(m[1]), "channel"), text)
    return _TIMESTAMP.sub("(a time shown in your time zone)", text)


def command_line(name: str, options: Mapping[str, Any]) -> str:
    """A slash command as Discord's input box shows it: `/pika text prompt:… seed:42`."""
    parts = [f"/{name}"]
    for key, value in options.items():
        if isinstance(value, Mapping) and "filename" in value:
            value = f"📎 {value['filename']}"
        parts.append(f"{key}:{value}")
    return " ".join(parts)


def buttons(components: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every button of a message's layout, as [Label] (disabled ones marked)."""
    found: list[str] = []
    for component in components:
        if component.get("type") == BUTTON:
            label = str(component.get("label") or component.get("emoji", {}).get("name") or "?")
            if component.get("style") == LINK_STYLE:
                label += " ↗"
            if component.get("disabled"):
                label += " (disabled)"
            found.append(f"[{label}]")
        found += buttons(list(component.get("components") or []))
        for key in ("component", "accessory"):
            child = component.get(key)
            if isinstance(child, Mapping):
                found += buttons([child])
    return found


def _status(embeds: Sequence[Mapping[str, Any]], loading: bool) -> str | None:
    """One line that says where a progress reply stood at one version."""
    if loading:
        return THINKING
    for embed in embeds:
        fields = list(embed.get("fields") or [])
        for item in fields:
            if item.get("name") == "Status":
                return str(item.get("value"))
        if fields:
            return f"{fields[0].get('name')}: {fields[0].get('value')}"
    return None


def status_trail(message: StoredMessage) -> list[str]:
    """The states a message went through over its edits, oldest first, repeats dropped."""
    versions: list[MessageVersion] = list(message.history)
    seen: list[str] = []
    for version in versions:
        line = _status(version.embeds, bool(version.flags & (1 << 7)))
        if line and (not seen or seen[-1] != line):
            seen.append(line)
    last = _status(message.embeds, message.loading)
    if last and (not seen or seen[-1] != last):
        seen.append(last)
    return seen


def _indent(text: str, depth: int) -> list[str]:
    pad = "  " * depth
    lines = text.splitlines() or [""]
    return [f"{pad}- {lines[0]}"] + [f"{pad}  {line}" for line in lines[1:]]


def _embed(embed: Mapping[str, Any], names: Mapping[int, str], depth: int) -> list[str]:
    title = embed.get("title") or "(untitled)"
    lines = _indent(f"embed **{readable(str(title), names)}**", depth)
    if embed.get("description"):
        lines += _indent(readable(str(embed["description"]), names), depth + 1)
    for item in embed.get("fields") or []:
        value = readable(str(item.get("value", "")), names)
        lines += _indent(f"{item.get('name')}: {value}", depth + 1)
    footer = (embed.get("footer") or {}).get("text")
    if footer:
        lines += _indent(f"footer: {footer}", depth + 1)
    return lines


def describe_message(
    message: StoredMessage,
    names: Mapping[int, str],
    *,
    saved: Mapping[int, str] | None = None,
) -> list[str]:
    """A message as the member saw it: who, who else could see it, text, embeds, files, buttons."""
    author = names.get(message.author_id, "someone")
    notes = ["only you can see this" if message.ephemeral else "public"]
    if message.history:
        edits = len(message.history)
        notes.append(f"edited {edits} time{'s' if edits != 1 else ''}")
    if message.deleted:
        notes.append("deleted afterwards")
    lines = [f"- **{author}** ({', '.join(notes)})"]
    trail = status_trail(message)
    if len(trail) > 1:
        lines += _indent("went through: " + " → ".join(trail), 1)
    if message.loading:
        lines += _indent(THINKING, 1)
    if message.content:
        lines += _indent("says: " + readable(message.content, names), 1)
    for embed in message.embeds:
        lines += _embed(embed, names, 1)
    for attachment in message.attachments:
        line = f"📎 {attachment.filename} ({format_bytes(attachment.size)})"
        if saved and attachment.id in saved:
            line += f" → saved as `{saved[attachment.id]}`"
        lines += _indent(line, 1)
    shown = buttons(message.components)
    if shown:
        lines += _indent("buttons: " + " ".join(shown), 1)
    return lines


def describe_modal(modal: Mapping[str, Any]) -> list[str]:
    """A modal the bot opened: its title and the inputs it asks for."""
    lines = [f"- **Pika** opened a form: **{modal.get('title', '')}**"]
    for text_input in modal_inputs(modal):
        label = text_input.get("label") or text_input.get("custom_id")
        need = "required" if text_input.get("required", True) else "optional"
        lines += _indent(f"{label} ({need})", 1)
    return lines


def modal_inputs(modal: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The text inputs of a modal, in order (inside action rows or labels)."""
    found: list[Mapping[str, Any]] = []

    def visit(component: Mapping[str, Any], label: str | None) -> None:
        if component.get("type") == 4:
            found.append({**component, "label": component.get("label") or label})
            return
        for child in component.get("components") or []:
            visit(child, label)
        inner = component.get("component")
        if isinstance(inner, Mapping):
            visit(inner, component.get("label"))

    for component in modal.get("components") or []:
        visit(component, None)
    return found


@dataclass
class Transcript:
    """The transcript being written: a header, then one section per step."""

    member: str
    channel: str
    server: str
    sections: list[str] = field(default_factory=list)

    def add(self, title: str, lines: Sequence[str]) -> None:
        number = len(self.sections) + 1
        self.sections.append("\n".join([f"## {number}. {title}", "", *lines]))

    def render(self, footer: Sequence[str] = ()) -> str:
        """The whole Markdown file: header, sections, then `footer`'s lines."""
        intro = (
            "Everything below happened on this machine, with no accounts: a fake Discord server "
            f"(**{self.server}**), the local fal emulator standing in for fal.ai, and the real "
            f"bot. You are **{self.member}**, a member of the server, in **#{self.channel}**. "
            "Each section shows what you did, then every message you saw, in order. Progress "
            "replies are edited in place: the states they went through are listed, then their "
            "final state. The videos sit next to this file."
        )
        parts = ["# Pika sandbox transcript", intro, *self.sections]
        if footer:
            parts.append("\n".join(footer))
        return "\n\n".join(parts).rstrip() + "\n"
