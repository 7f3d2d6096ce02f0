"""Refusals a member can read: the messages for values Pika's requests do not accept."""

from __future__ import annotations

import re

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from bot.pika.catalogue import PROMPT_MAX, Mode, or_list
from bot.pika.errors import InvalidRequest

# Why control characters are removed rather than refused: Discord's own text boxes don't let a
# member type them, so the ones that arrive are invisible paste debris (a stray \r, an ESC
# from a terminal) that the member can neither see nor fix; refusing would be a riddle. They
# carry no meaning for the model, but they can corrupt logs and terminals (escape sequences),
# and bidirectional overrides can make the bot's own public messages that echo the prompt read
# backwards. Newlines and tabs are kept because they are ordinary text. Line breaks of every
# kind become "\n" first so that a Windows paste doesn't lose its line breaks.
_LINE_BREAKS = re.compile(r"\r\n|\r|\u2028|\u2029")
_REMOVED_CHARS = {
    **{code: None for code in range(0x00, 0x20) if chr(code) not in "\n\t"},
    0x7F: None,
    **{code: None for code in range(0x80, 0xA0)},
    **{code: None for code in range(0x202A, 0x202F)},  # bidi embeddings and overrides
    **{code: None for code in range(0x2066, 0x206A)},  # bidi isolates
}

_ERROR_TYPE = "invalid_request"


def clean_text(value: str) -> str:
    """A member's text with line breaks unified, control characters removed, and trimmed."""
    return _LINE_BREAKS.sub("\n", value).translate(_REMOVED_CHARS).strip()


def refuse(message: str, option: str | None = None) -> PydanticCustomError:
    """A validation error whose message is shown to members as it is."""
    # The message goes through the context, not the template, so braces in echoed member text
    # are never taken for placeholders.
    return PydanticCustomError(_ERROR_TYPE, "{reason}", {"reason": message, "option": option})


def shown(value: object, limit: int = 40) -> str:
    """A member's value quoted for an error message, cut short so a message stays readable."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f'"{text}"'


def invalid_from(error: ValidationError) -> InvalidRequest:
    """Turn pydantic's report into the readable refusal a member gets (never the raw text)."""
    messages: list[str] = []
    option: str | None = None
    for detail in error.errors(include_url=False):
        ctx = detail.get("ctx") or {}
        if detail["type"] == _ERROR_TYPE:
            message = str(ctx["reason"])
            where = ctx.get("option")
        else:
            # The innermost named field; a union's tag comes first and says less.
            where = next((p for p in reversed(detail["loc"]) if isinstance(p, str)), None)
            message = _generic_message(detail["type"], where, detail["msg"])
        if option is None and where is not None:
            option = str(where)
        if message not in messages:
            messages.append(message)
    return InvalidRequest("\n".join(messages) or "That request isn't valid.", option=option)


def _generic_message(kind: str, where: str | None, msg: str) -> str:
    name = where or "a value"
    if kind == "missing":
        return f"{name} is required."
    if kind == "extra_forbidden":
        return f"{name} isn't an option here."
    if kind == "union_tag_not_found":
        return f"mode is required; pick {or_list(m.value for m in Mode)}."
    if kind == "json_invalid":
        return "The request isn't valid JSON."
    if kind == "union_tag_invalid":
        return f"There is no mode like that; pick {or_list(m.value for m in Mode)}."
    return f"{name} isn't valid: {msg}."


def choice(option: str, value: object, allowed: tuple[str, ...], hint: str = "") -> str:
    """The canonical spelling of a choice, matched without regard to case or spaces."""
    if isinstance(value, str):
        wanted = value.strip().casefold()
        for candidate in allowed:
            if candidate.casefold() == wanted:
                return candidate
    raise refuse(f"{option} {shown(value)} isn't a choice; pick {or_list(allowed)}{hint}.", option)


def whole_number(option: str, value: object, rule: str) -> int:
    """An integer from Discord (int) or from text (digits), else a refusal naming the rule."""
    if isinstance(value, bool):
        raise refuse(f"{option} must be {rule}; {shown(value)} isn't.", option)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value.strip())
    raise refuse(f"{option} must be {rule}; {shown(value)} isn't.", option)


def member_text(
    option: str, value: object, *, required: bool, label: str | None = None
) -> str | None:
    """Cleaned text, None when empty and optional; `label` names it in messages if not `option`."""
    label = label or option
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = clean_text(value)
    else:
        raise refuse(f"{label} must be text.", option)
    if not text:
        if required:
            raise refuse(
                f"{label} is empty; write what the video should show "
                f"(up to {PROMPT_MAX:,} characters).",
                option,
            )
        return None
    if len(text) > PROMPT_MAX:
        raise refuse(
            f"{label} is {len(text):,} characters long; the limit is {PROMPT_MAX:,}. "
            "Shorten it and try again.",
            option,
        )
    return text
