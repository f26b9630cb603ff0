"""The task registry: each task (a classifier's tile maps, a segmenter's crack masks...) registered in one place,
its parts named there (:class:`~.task.Task`); generic code looks them up by the task's name.

    from crack_lightning.tasks import Task, register
    register(Task(name="brightness", what="brightness marker", predictor=MyPredictor, scan=MyScanTask))
"""

from crack_lightning.tasks.registry import DEFAULT_TASK, TASKS, register, task_named, task_of, unregister
from crack_lightning.tasks.task import Task

__all__ = ["DEFAULT_TASK", "TASKS", "Task", "register", "task_named", "task_of", "unregister"]
