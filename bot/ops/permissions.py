"""What the bot needs in a channel (DISCORD.md "Permissions the bot needs in a channel"), listed
once: for the invite URL and `check`, and for the warnings members see before a delivery.

Each is a discord.py `Permissions` attribute and the name Discord's settings show.
"""

from __future__ import annotations

NEEDED: tuple[tuple[str, str], ...] = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("send_messages_in_threads", "Send Messages in Threads"),
    ("attach_files", "Attach Files"),
    ("embed_links", "Embed Links"),
    ("read_message_history", "Read Message History"),
)

# To post in a text channel.
IN_CHANNEL = tuple(need for need in NEEDED if need[0] != "send_messages_in_threads")
# In a thread (a forum post is one) Send Messages in Threads takes Send Messages' place.
IN_THREAD = tuple(need for need in NEEDED if need[0] != "send_messages")
