"""``python -m crack_lightning COMMAND``: each command in its module; only fit, validate, test and Lightning's
predict (``predict --engine lightning``) import torch and Lightning. fit, validate and test run the classifier's LightningCLI
(:mod:`~crack_lightning.cli.train`), or another task's (its ``lightning_cli``: the segmenter's is
:mod:`~crack_lightning.cli.segment`) when the config or the checkpoint names that task's model."""

from __future__ import annotations

import gc
import importlib
import sys
from pathlib import Path

from crack_lightning.errors import CrackLightningError, SharedError
from crack_lightning.tasks.registry import DEFAULT_TASK, TASKS
from crack_lightning.tasks.task import Task

COMMANDS = {
    "fit": ("train", "train a model (LightningCLI: --config configs/default.yaml, a segmenter: configs/segment.yaml)"),
    "validate": ("train", "validation metrics of a checkpoint"),
    "test": ("train", "test report of a checkpoint (default: the shipped model)"),
    "predict": ("predict", "classify images into a CSV (default model: the shipped one)"),
    "scan": ("scan", "crack maps of whole photos"),
    "evaluate": ("evaluate", "a segmenter's figures on photos with true masks, scanned as scan does"),
    "tiles": ("tiles", "labelled tiles from photos with crack masks, to adapt a model"),
    "export": ("export", "a model as one ONNX file"),
    "synth": ("synth", "synthetic cracks with exact masks on photos of sound concrete, to train a segmenter"),
    "marker": ("marker", "a printable marker card: scan then measures in millimetres without --mm_per_px"),
}
USAGE = (
    "usage: python -m crack_lightning {" + ",".join(COMMANDS) + "} [options]; python -m crack_lightning COMMAND --help"
)


def option_values(argv: list[str], *names: str) -> list[str]:
    """The values given to the options ``names`` (``--name value`` or ``--name=value``), in order."""
    values = []
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                values.append(argv[i + 1])
            elif arg.startswith(name + "="):
                values.append(arg[len(name) + 1 :])
    return values


def class_task(name: str) -> Task | None:
    """The task whose LightningModule is the class ``name`` (a class path or a class name); None: no task's."""
    wanted = name.rsplit(".", 1)[-1]
    return next((task for task in TASKS.values() if task.module is not None and task.module_name == wanted), None)


def config_task(config_file: str) -> Task | None:
    """The task of the model a config file names (``model.class_path``, or ``model: CrackSegmenter``); None: none."""
    import yaml

    try:
        config = yaml.safe_load(Path(config_file).expanduser().read_text())
    except (OSError, yaml.YAMLError):
        return None  # LightningCLI reports the file's problem
    model = config.get("model") if isinstance(config, dict) else None
    model = model.get("class_path") if isinstance(model, dict) else model
    return class_task(model) if isinstance(model, str) else None


def lightning_task(argv: list[str]) -> Task:
    """The task fit/validate/test are asked for: of a ``--config``'s model, a ``--model``, or a ``--ckpt_path``'s
    hyperparameters (``task: segmentation``); the classifier when none names another."""
    named = [config_task(f) for f in option_values(argv, "--config", "-c")]
    named += [class_task(v) for v in option_values(argv, "--model", "--model.class_path")]
    if found := next((t for t in named if t is not None and t.name != DEFAULT_TASK), None):
        return found
    from crack_lightning.models.checkpoints import checkpoint_path, checkpoint_task  # torch: needed anyway

    # a shipped model by name, as a checkpoint file
    for path in option_values(argv, "--ckpt_path"):
        if (name := checkpoint_task(checkpoint_path(path))) in TASKS and name != DEFAULT_TASK:
            return TASKS[name]
    return TASKS[DEFAULT_TASK]


def run_lightning(argv: list[str]) -> None:
    # torch, torchvision and Lightning create about a million long-lived objects on import. The cyclic garbage
    # collector would traverse them again and again during the imports and once more at exit: about 1.3 s of a 4 s
    # start on a 2-core machine. They live as long as the process, so the collector skips them (gc.freeze).
    gc.disable()
    if argv and argv[0] in ("fit", "validate", "test"):
        run = lightning_task(argv[1:]).part("lightning_cli")
    else:
        from crack_lightning.cli.train import run

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
            from crack_lightning.cli.predict import engine, lightning_argv

            if engine(argv[1:]) == "lightning":
                module, argv = "train", [command, *lightning_argv(argv[1:])]
                print("Inference: Lightning's predict (PyTorch; --engine lightning)", file=sys.stderr)
        if module == "train":
            from crack_lightning.cli.stored_help import stored_help

            text = stored_help(argv)
            if text is not None:
                print(text, end="")
                return
            run_lightning(argv)
        else:
            from crack_lightning.cli.options import flags

            command_module = importlib.import_module(f"crack_lightning.cli.{module}")
            with flags(getattr(command_module, "FLAGS", None)):  # the library names fields, the command its flags
                command_module.run(argv[1:])
    except CrackLightningError as err:
        if not isinstance(err, SharedError):  # the first process says it
            print(f"crack_lightning: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
