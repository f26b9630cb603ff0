"""What the classifier's and the segmenter's LightningCLIs share: one-line usage errors, only the asked subcommand
built, output folders checked before anything is built, precision chosen for the hardware, and how they are run."""

from __future__ import annotations

import sys
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from crack_lightning.cli.options import one_line
from crack_lightning.errors import CrackLightningError, OptionError, require_writable
from crack_lightning.training.precision import auto_precision

SEED = 42
PROG = "python -m crack_lightning"


class CrackArgumentParser(LightningArgumentParser):
    """LightningCLI's parser whose usage errors end as one line too, instead of the usage text."""

    def error(self, message: str, ex: Exception | None = None) -> None:  # type: ignore[override]
        raise CrackLightningError(f"{one_line(message)} (see --help)") from ex


class CheckedCLI(LightningCLI):
    """LightningCLI that builds the parser of the asked subcommand only (each takes about half a second) among
    ``SUBCOMMANDS``, checks where the run will write before any model is built or data read, and picks the
    precision for the hardware when the config leaves it null."""

    SUBCOMMANDS: tuple[str, ...] = ("fit", "validate", "test", "predict")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        argv = kwargs.get("args")
        argv = sys.argv[1:] if argv is None else list(argv)
        self.asked = argv[0] if argv and argv[0] in self.SUBCOMMANDS else None
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        every = LightningCLI.subcommands()
        return {self.asked: every[self.asked]} if self.asked else {name: every[name] for name in self.SUBCOMMANDS}

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        logger = config.get("trainer.logger")
        save_dir = logger.get("init_args.save_dir") if hasattr(logger, "get") else None
        if save_dir:
            require_writable(save_dir, "--trainer.logger.init_args.save_dir")
        if config.get("trainer.default_root_dir"):
            require_writable(config["trainer.default_root_dir"], "--trainer.default_root_dir")
        if config.get("trainer.precision") is None:
            precision, why = auto_precision(str(config.get("trainer.accelerator") or "auto"))
            config["trainer.precision"] = precision
            rank_zero_info(f"Precision: {precision} ({why}); --trainer.precision 32-true or bf16-mixed chooses")


def flag_of(err: OptionError, callbacks: dict[type, str]) -> str:
    """The flag of the option an :class:`OptionError` names by its field: ``--model.lr``, ``--data.root``,
    ``--finetuning.backbone_lr``..., found from the object whose method raised it (the innermost one that is a
    LightningModule, a LightningDataModule or a callback of ``callbacks``, by its config key; ``""``: top level)."""
    if err.field.startswith("-") or "." in err.field:  # named as a flag, or as a config key, already
        return err.field if err.field.startswith("-") else f"--{err.field}"
    owners = []
    tb = err.__traceback__
    while tb is not None:
        owners.append(tb.tb_frame.f_locals.get("self"))
        tb = tb.tb_next
    for owner in reversed(owners):
        module = type(owner).__module__
        if isinstance(owner, LightningModule) or module.startswith("crack_lightning.models."):
            return f"--model.{err.field}"
        if isinstance(owner, LightningDataModule) or module.startswith("crack_lightning.data."):  # its datasets too
            return f"--data.{err.field}"
        if type(owner) in callbacks:
            key = callbacks[type(owner)]
            return f"--{key}.{err.field}" if key else f"--{err.field}"
    return f"--{err.field}"


def run_cli(cli_class: type[LightningCLI], args: list[str], description: str, *classes: Any, **kwargs: Any) -> None:
    """Run ``cli_class`` over ``classes`` (model, data) on ``args``; its input errors end as one line, an option's
    naming its flag."""
    try:
        cli_class(
            *classes,
            seed_everything_default=SEED,
            auto_configure_optimizers=False,  # each model configures its own optimisers
            parser_class=CrackArgumentParser,
            parser_kwargs={"prog": PROG, "description": description},
            # None when they are the command line's: LightningCLI warns when given both
            args=None if list(args) == sys.argv[1:] else args,
            **kwargs,
        )
    except (CrackLightningError, ValueError) as raised:
        # jsonargparse wraps what a subclass-form class (the segmenter's config) raises in a ValueError
        err = own_error(raised)
        if err is None:
            raise
        if isinstance(err, OptionError):
            raise err.for_flag(flag_of(err, getattr(cli_class, "CALLBACK_KEYS", {}))) from None
        # Errors raised in DataLoader workers arrive wrapped in a traceback: keep the message's last line.
        prefix = f"{CrackLightningError.__module__}.{CrackLightningError.__name__}: "
        raise CrackLightningError(str(err).strip().splitlines()[-1].removeprefix(prefix)) from None


def own_error(err: BaseException | None) -> CrackLightningError | None:
    """``err`` or the first of its causes that is ours; ``None`` if none is."""
    while err is not None and not isinstance(err, CrackLightningError):
        err = err.__cause__
    return err
