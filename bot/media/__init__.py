"""Bytes in and out: sniffing, validating members' inputs, the input cache, downloads and fitting
videos under Discord's upload limit."""

from bot.media.cache import InputCache
from bot.media.download import (
    DownloadError,
    DownloadFailed,
    DownloadRefused,
    DownloadTooLarge,
    download,
    fetch,
    host_allowed,
)
from bot.media.fit import FitResult, fit_to_limit, fitted_path
from bot.media.images import ImageInfo, validate_image
from bot.media.limits import (
    DEFAULT_LIMITS,
    InputRejected,
    Limits,
    precheck_image,
    precheck_video,
)
from bot.media.sniff import sniff
from bot.media.videos import (
    VideoInfo,
    VideoProbe,
    VideoUnreadable,
    last_frame,
    probe,
    validate_video,
)

__all__ = [
    "DEFAULT_LIMITS",
    "DownloadError",
    "DownloadFailed",
    "DownloadRefused",
    "DownloadTooLarge",
    "FitResult",
    "ImageInfo",
    "InputCache",
    "InputRejected",
    "Limits",
    "VideoInfo",
    "VideoProbe",
    "VideoUnreadable",
    "download",
    "fetch",
    "fit_to_limit",
    "fitted_path",
    "host_allowed",
    "last_frame",
    "precheck_image",
    "precheck_video",
    "probe",
    "sniff",
    "validate_image",
    "validate_video",
]
