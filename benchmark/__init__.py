"""codecbench: one benchmark for neural and traditional audio codecs.

The package is laid out as the repository's top-level folders:
``codecbench`` (benchmark/) is the engine, ``codecbench.codecs`` the codec
adapters, ``codecbench.tasks`` the task runners, ``codecbench.leaderboard``
the submission tools and ``codecbench.conf`` the Hydra configuration.
Importing it loads nothing heavy.
"""

__version__ = "0.1.0"

from codecbench.audio import Audio  # noqa: E402  (light: numpy only)
from codecbench.errors import CodecbenchError  # noqa: E402

__all__ = ["Audio", "CodecbenchError", "__version__"]
