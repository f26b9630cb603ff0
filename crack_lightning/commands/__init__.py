"""``python -m crack_lightning COMMAND``: each command in its module; only fit, validate, test and Lightning's
predict import torch and Lightning."""

from __future__ import annotations

import gc
import importlib
import sys

from crack_lightning.errors import CrackLightningError

COMMANDS = {
    "fit": ("train", "train a model (LightningCLI: --config configs/default.yaml, --help for every option)"),
    "validate": ("train", "validation metrics of a checkpoint"),
    "test": ("train", "test report of a checkpoint (default: the shipped model)"),
    "predict": ("predict", "classify images into a CSV (default model: the shipped one)"),
    "scan": ("scan", "crack maps of whole photos"),
    "tiles": ("tiles", "labelled tiles from photos with crack masks, to adapt a model"),
    "export": ("export", "a model as one ONNX file"),
}
USAGE = "usage: python -m crack_lightning {" + ",".join(COMMANDS) + "} [options]; python -m crack_lightning COMMAND --help"


def run_lightning(argv: list[str]) -> None:
    # torch, torchvision and Lightning create about a million long-lived objects on import. The cyclic garbage
    # collector would traverse them again and again during the imports and once more at exit: about 1.3 s of a 4 s
    # start on a 2-core machine. They live as long as the process, so the collector skips them (gc.freeze).
    gc.disable()
    from crack_lightning.commands.train import run

    gc.freeze()
    gc.enable()
    run(argv)


def main(args: list[str] | None = None) -> None:
    """Run a command; input errors end it with one line and exit status 2."""
    argv = sys.argv[1:] if args is None else list(args)
    try:
        command = argv[0] if argv else None
        if command in (None, "-h", "--help"):
            print(USAGE + "\n\ncommands:\n" + "\n".join(f"  {name:<9} {what}" for name, (_, what) in COMMANDS.items()))
            return
        if command not in COMMANDS:
            raise CrackLightningError(f"unknown command {command!r}; {USAGE}")
        module = COMMANDS[command][0]
        if module == "predict":
            from crack_lightning.commands.predict import needs_trainer

            module = "train" if needs_trainer(argv[1:]) else "predict"
        if module == "train":
            run_lightning(argv)
        else:
            importlib.import_module(f"crack_lightning.commands.{module}").run(argv[1:])
    except CrackLightningError as err:
        print(f"crack_lightning: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
