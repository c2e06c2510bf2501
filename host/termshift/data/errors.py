"""Error types shared by every dataset loader in termshift.data.

Owns the two ways a dataset can be unusable: it is not on this machine
(:class:`DatasetMissingError`) or it is there but not what we expect
(:class:`IntegrityError`). Loaders never return partially verified data.
"""

from __future__ import annotations

GET_DATA = "bash scripts/get_data.sh"


def get_data_command(name: str) -> str:
    """The exact shell command that installs dataset ``name``."""
    return f"{GET_DATA} {name}"


class DatasetMissingError(FileNotFoundError):
    """A dataset or model is not installed; the message names the command that installs it."""

    def __init__(self, name: str, detail: str, command: str | None = None, hint: str | None = None):
        self.dataset = name
        self.command = command or get_data_command(name)
        super().__init__(f"{name}: {detail}. " + (hint or f"Install it with: {self.command}"))

    def __str__(self) -> str:
        # FileNotFoundError would otherwise format as "[Errno None] ...".
        return self.args[0]


class IntegrityError(ValueError):
    """Data is present but fails a size, header or checksum check."""
