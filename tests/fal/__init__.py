"""Tests of the fal client (bot/fal) against the fal emulator."""
