"""The parser of the commands that run without torch (predict, scan, tiles, export): jsonargparse, as LightningCLI
uses, so every command spells flags the same way (``--key value``, ``true``/``false``) and takes ``--config``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jsonargparse import ActionConfigFile, ArgumentParser

from crack_lightning.errors import CrackLightningError, OptionError


def one_line(message: str) -> str:
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())


class CommandParser(ArgumentParser):
    """A command's parser whose usage errors end as one line (the CLI prints ``crack_lightning: error: ...``)."""

    def __init__(self, command: str, description: str, config: bool = True) -> None:
        super().__init__(prog=f"python -m crack_lightning {command}", description=description, default_meta=False)
        self.command = command
        if config:
            self.add_argument(
                "--config", action=ActionConfigFile, help="A YAML file of these options (--print_config writes one)."
            )

    def error(self, message: str, ex: Exception | None = None) -> None:  # type: ignore[override]
        raise CrackLightningError(f"{self.command}: {one_line(message)} (see --help)") from ex


@contextmanager
def flags(renamed: dict[str, str] | None = None) -> Iterator[None]:
    """The library's errors name an option's field (``tile: 0; ...``); raised in this block, they name the command's
    flag instead: ``--tile``, or as ``renamed`` says (``{"batch_size": "--data.batch_size"}``). :func:`crack_lightning.cli.main`
    runs each torch-free command in it, with the command module's ``FLAGS``."""
    try:
        yield
    except OptionError as err:
        raise err.for_flag((renamed or {}).get(err.field)) from None
