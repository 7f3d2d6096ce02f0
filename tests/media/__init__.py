"""Tests for bot.media: sniffing, validation, the input cache, downloads and fitting."""
