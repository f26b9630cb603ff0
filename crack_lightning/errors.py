"""The one exception type the CLI turns into a one-line message instead of a traceback, and checks that raise it."""

import os
from pathlib import Path


class CrackLightningError(Exception):
    """A problem with the user's input (a path, a file, a config value) that they can fix."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`CrackLightningError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CrackLightningError(message)


def require_writable(path: str | os.PathLike, option: str) -> None:
    """Fail early, with the option's name, when ``path`` (a folder to create or a file's folder) cannot be written."""
    existing = Path(path).expanduser().absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise CrackLightningError(
            f"{option}: cannot write into {path} ({existing} is {'not a folder' if not existing.is_dir() else 'read-only'}); "
            "pass a folder you can write to"
        )
