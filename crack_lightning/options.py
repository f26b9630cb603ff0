"""What every options object shares (:class:`~crack_lightning.runtime.options.RunOptions`,
:class:`~crack_lightning.scanning.options.TileOptions`, :class:`~crack_lightning.scanning.options.CrackOptions`): a
frozen dataclass whose fields hold the defaults and whose ``__post_init__`` holds the checks, raising
:class:`~crack_lightning.errors.OptionError` naming the field. Keyword options are routed by these fields, so a name
is written once, in its dataclass."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from crack_lightning.errors import OptionError

T = TypeVar("T", bound="Options")


class Options:
    """A mixin for the options dataclasses."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def take(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The items of ``options`` that are this object's fields, removed from ``options``."""
        return {name: options.pop(name) for name in cls.names() if name in options}

    @classmethod
    def of(cls: type[T], what: str, **options: Any) -> T:
        """The options object of ``options``; an unknown name is an error naming it, and ``what`` takes options."""
        for name in options:
            if name not in cls.names():
                raise OptionError(name, f"not an option of {what}; its options: {', '.join(cls.names())}")
        return cls(**options)


def at_least(name: str, value: int | None, least: int = 1, none: bool = False) -> None:
    """The check of a whole number: ``value`` at least ``least`` (``None`` allowed with ``none``)."""
    if value is None and none:
        return
    if value is None or value < least:
        raise OptionError(name, f"{value}; pass a whole number of at least {least}")


def probability(name: str, value: float | None, none: bool = False) -> None:
    """The check of a crack probability, in (0, 1] (``None`` allowed with ``none``: the model's)."""
    if value is None and none:
        return
    if value is None or not 0.0 < value <= 1.0:
        raise OptionError(name, f"{value}; pass a probability in (0, 1]")
