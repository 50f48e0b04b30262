"""A minimal domain-neutral task for testing aggregation (it is not under test itself)."""

from __future__ import annotations

import numpy as np

from codecbench.tasks.base import Metric, Task, TaskRow


class LevelTask(Task):
    """Reconstruction RMS level in dBFS, for every domain."""

    name = "level"

    @property
    def metrics(self):
        return (Metric("rms_dbfs", "dBFS", True, (-200.0, 10.0), "numpy", "RMS level of the reconstruction"),)

    def score(self, reference, reconstruction, item) -> TaskRow:
        rms = float(np.sqrt(np.mean(reconstruction.samples.astype(np.float64) ** 2)))
        return self.compute_metrics(item, {"rms_dbfs": lambda: 20 * np.log10(rms)})


class BatchSizeTask(LevelTask):
    """Records in each row how many items its batch held; raises for batches holding ``fail_id``."""

    name = "batchsize"

    def __init__(self, fail_id: str | None = None):
        self.fail_id = fail_id

    def score_batch(self, batch):
        if any(item.id == self.fail_id for _, _, item in batch):
            raise RuntimeError(f"model crashed on a batch of {len(batch)}")
        rows = [self.score(reference, reconstruction, item) for reference, reconstruction, item in batch]
        for row in rows:
            row.extra["batch"] = len(batch)
        return rows
