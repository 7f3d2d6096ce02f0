"""What the app relies on in discord.py beyond its public API."""

from __future__ import annotations

import inspect
import re

import discord.app_commands.tree
import discord.ui.modal
import discord.ui.view

from bot.app import INTERACTION_TASKS


def test_discord_py_still_names_the_interaction_tasks_a_stop_waits_for() -> None:
    source = "".join(
        inspect.getsource(module)
        for module in (discord.app_commands.tree, discord.ui.view, discord.ui.modal)
    )
    names = re.findall(r"name=f?'([^'{]*)", source)
    missing = [
        prefix for prefix in INTERACTION_TASKS if not any(n.startswith(prefix) for n in names)
    ]
    assert missing == []
