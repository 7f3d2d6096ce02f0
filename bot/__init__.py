"""Pika Discord bot: slash commands that turn prompts and images into Pika videos on fal.ai."""

__version__ = "0.1.0"
