"""`python -m bot sandbox`: the whole bot on one machine, no accounts, every mode played once."""

from bot.sandbox.run import (
    FULL,
    SMALL,
    SandboxFailed,
    SandboxReport,
    SandboxSizes,
    StepResult,
    main,
    run_sandbox,
)

__all__ = [
    "FULL",
    "SMALL",
    "SandboxFailed",
    "SandboxReport",
    "SandboxSizes",
    "StepResult",
    "main",
    "run_sandbox",
]
