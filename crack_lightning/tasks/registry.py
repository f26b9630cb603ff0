"""The tasks, by name: the package's own (:mod:`.classification`, :mod:`.segmentation`) and any :func:`register`-ed
since. A model, graph, checkpoint or model card that names no task is a classifier's (they named none before
segmentation came)."""

from __future__ import annotations

from typing import Any

from crack_lightning.errors import CrackLightningError
from crack_lightning.tasks.classification import CLASSIFICATION
from crack_lightning.tasks.segmentation import SEGMENTATION
from crack_lightning.tasks.task import Task

DEFAULT_TASK = CLASSIFICATION.name  # the task of a file that names none
TASKS: dict[str, Task] = {task.name: task for task in (CLASSIFICATION, SEGMENTATION)}


def register(task: Task, replace: bool = False) -> Task:
    """Add ``task`` (``replace``: also over a task of the same name); returns it."""
    if task.name in TASKS and TASKS[task.name] is not task and not replace:
        raise CrackLightningError(f"a task {task.name!r} is registered already; pass replace=True to replace it")
    TASKS[task.name] = task
    return task


def unregister(name: str) -> None:
    """Remove the task called ``name`` (nothing when there is none)."""
    TASKS.pop(name, None)


def task_named(name: str | None, source: str = "") -> Task:
    """The task called ``name`` (``None`` or ``""``: :data:`DEFAULT_TASK`); a one-line error naming ``source`` (the
    file that names it) for a task no one registered."""
    if name in TASKS or not name:
        return TASKS[name or DEFAULT_TASK]
    known = ", ".join(sorted(TASKS))
    raise CrackLightningError(
        f"{source + ': ' if source else ''}a model of task {name!r}, which this crack_lightning does not know "
        f"(it knows {known}); register the task first (crack_lightning.tasks.register)"
    )


def task_of(model: Any) -> Task:
    """The task of a loaded model: a runtime predictor's (its ``task``), or a LightningModule's (the registered
    ``module`` class it is an instance of)."""
    name = getattr(model, "task", None)
    if isinstance(name, str):
        return task_named(name, getattr(model, "source", ""))
    for task in TASKS.values():
        if task.module is not None and isinstance(model, task.part("module")):
            return task
    raise CrackLightningError(f"{type(model).__name__} is no registered task's model")
