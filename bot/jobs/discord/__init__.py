"""The Discord-facing part of jobs: embeds, buttons and the messenger that posts them."""
