"""Benchmarks of the bot against the fake Discord and the fal emulator (run `python -m bench`)."""
