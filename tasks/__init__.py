"""Task runners: each scores (reference, reconstruction, item) into a row and
aggregates rows into a summary. The contract is :mod:`codecbench.tasks.base`."""

from codecbench.tasks.base import Metric, MetricFailure, Task, TaskRow

__all__ = ["Metric", "MetricFailure", "Task", "TaskRow"]
