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
