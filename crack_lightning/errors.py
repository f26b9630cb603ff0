"""The one exception type the CLI turns into a one-line message instead of a traceback, and checks that raise it."""

import os
import tempfile
from pathlib import Path


class CrackLightningError(ValueError):
    """A problem with the user's input (a path, a file, a value) that they can fix: a ``ValueError`` whose message
    names the file or parameter and what to do; the CLI prints it as one line instead of a traceback."""


class OptionError(CrackLightningError):
    """A bad value of an option, named as the library takes it (``tile: 0; pass ...``), so that a Python caller is
    told the field to fix; a command names its flag instead (:meth:`for_flag`)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")

    def for_flag(self, flag: str | None = None) -> CrackLightningError:
        """The same error naming the command's ``flag`` (default ``--<field>``; a field named as a flag already stays)."""
        flag = flag or (self.field if self.field.startswith("-") else f"--{self.field}")
        return CrackLightningError(f"{flag}: {self.problem}")


class SharedError(CrackLightningError):
    """The first process's error, raised in the other processes of the same scan too: the CLI prints it once, from
    the first."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`CrackLightningError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CrackLightningError(message)


def require_option(condition: bool, field: str, problem: str) -> None:
    """Raise :class:`OptionError` naming ``field`` with ``problem`` unless ``condition`` holds."""
    if not condition:
        raise OptionError(field, problem)


def require_writable(path: str | os.PathLike, option: str) -> None:
    """Fail early, with the option's name, when ``path`` (a folder to create or a file's folder) cannot be written.

    ``os.access`` alone is not enough: root may "write" to ``/proc`` or a read-only mount by its answer, yet mkdir
    fails there; so a folder is actually created in the nearest existing parent, and removed again.
    """
    existing = Path(path).expanduser().absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        problem = f"{existing} is not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is read-only"
    else:
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".crack_lightning-probe-", dir=existing))
            return
        except OSError as err:
            problem = f"cannot create a folder in {existing}: {err.strerror or err}"
    raise OptionError(option, f"cannot write into {path} ({problem}); pass a folder you can write to")
