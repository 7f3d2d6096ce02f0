"""What a job's runner needs from the settings: deadlines, intervals, where videos may come from."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bot.retry import RetryPolicy

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# Four tries in all, 0.25 s, 0.5 s and 1 s apart.
DOWNLOAD_RETRY = RetryPolicy(max_attempts=4, base_delay=0.25, jitter=False)


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """What the runner needs from the settings."""

    output_dir: Path
    data_uri_max_bytes: int
    output_max_bytes: int
    download_hosts: Collection[str]
    download_require_https: bool
    poll_interval: float
    progress_interval: float
    deadline_seconds: int
    webhook_url: str | None = None
    # A job still at fal this long after it was accepted (fal never finalised it, or could not
    # be asked) ends without a video: the member is refunded and the run is written off,
    # because fal may bill it. None: twice deadline_seconds.
    hard_deadline_seconds: int | None = None
    # A job is only sent when at least this much of its deadline is left (at most a quarter of
    # the deadline), so it is never sent to be cancelled moments later.
    submit_margin_seconds: float = 60.0
    # After a failed status check or cancel, wait poll_interval x 2^(n-1), at most this long.
    watch_backoff_max: float = 60.0
    # fal's CDN drops a connection now and then: a failed download of a finished (and billed)
    # video is tried again as this policy says.
    download_retry: RetryPolicy = DOWNLOAD_RETRY

    @property
    def hard_deadline(self) -> int:
        """Seconds after acceptance when a job at fal is given up for good."""
        hard = self.hard_deadline_seconds or 2 * self.deadline_seconds
        return max(hard, self.deadline_seconds)

    @property
    def submit_margin(self) -> float:
        """The least time before the deadline a job may still be sent with."""
        return min(self.submit_margin_seconds, self.deadline_seconds / 4)

    @property
    def watch_retry(self) -> RetryPolicy:
        """The pauses before watching a job at fal again after a failed look (no end of tries:
        the hard deadline ends the watch)."""
        return RetryPolicy(
            base_delay=self.poll_interval, max_delay=self.watch_backoff_max, jitter=False
        )


def download_rules(hosts: Collection[str], *fal_urls: str) -> tuple[frozenset[str], bool]:
    """The hosts results may come from and whether HTTPS is required.

    fal's own queue and storage hosts are always allowed. Plain HTTP is only accepted when
    every fal URL points at this machine (the emulator in tests and the sandbox).
    """
    fal_hosts = {urlsplit(url).hostname or "" for url in fal_urls}
    local = bool(fal_hosts) and fal_hosts <= LOOPBACK
    return frozenset({*hosts, *fal_hosts} - {""}), not local
