"""The ``visqol`` task: ViSQOL v3 MOS-LQO of a reconstruction against its reference.

Metrics (MOS-LQO, 1-5, higher is better):

- ``visqol_speech``: ViSQOL speech mode at 16000 Hz, mapped to MOS-LQO by
  the deep-lattice TFLite model that ships with visqol-python (the mapping
  google/visqol uses by default). Items of the "speech" domain only.
- ``visqol_audio``: ViSQOL audio mode at 48000 Hz, mapped by the libsvm
  nu-SVR model that ships with visqol-python. Every domain.

Computation: both signals are downmixed to mono (mean over channels) and
resampled once per rate with the project's one resampler, through
:class:`codecbench.tasks.signal.SignalPair`, then handed unchanged to
``visqol.VisqolApi.measure_from_arrays``; values equal
``api.measure_from_arrays(ref, deg, rate).moslqo`` on those arrays.

No fallback number: with ``ai-edge-litert`` missing, visqol-python's speech
mode (``use_lattice_model=None``, its default) logs a warning and maps with
a polynomial that scores clean speech 5.0 (about 1-2 MOS above the lattice
model on degraded speech). This task asks for the lattice model explicitly
and checks it is the mapper in use when the task is built; otherwise it
raises, naming the extra to install (or select ``metrics=[visqol_audio]``).

Failures are recorded, never turned into numbers: silent or non-finite
input (from SignalPair), and visqol's own errors, e.g. clips too short for
a patch (under about 1 s: speech mode raises IndexError, audio mode
"Reference spectrum size ... smaller than minimum patch size").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from codecbench.audio import Audio, resampler_info
from codecbench.errors import CodecbenchError, missing_extra
from codecbench.provenance import file_sha256, package_version
from codecbench.tasks.base import Metric, MetricFailure, Task, TaskRow, select_names
from codecbench.tasks.signal import SignalPair, seconds_text

if TYPE_CHECKING:
    from codecbench.datasets.base import Item

#: pip extra that installs this task's evaluators (visqol-python, ai-edge-litert).
EXTRA = "visqol"

#: ViSQOL clips its MOS-LQO to 1-5 (audio mode SVR: np.clip; lattice model: bounded calibrator).
VISQOL_RANGE = (1.0, 5.0)

#: ViSQOL's search window radius, in patches (visqol-python's and google/visqol's default).
SEARCH_WINDOW = 60

# -- the two modes ------------------------------------------------------------------


@dataclass(frozen=True)
class VisqolMode:
    """One metric of this task: a ViSQOL mode, its rate (Hz), domains and description."""

    name: str
    mode: str
    sample_rate: int
    domains: tuple[str, ...] | None
    description: str


MODES: tuple[VisqolMode, ...] = (
    VisqolMode(
        name="visqol_speech",
        mode="speech",
        sample_rate=16000,
        domains=("speech",),
        description="ViSQOL v3 speech mode of the mono downmix at 16 kHz, MOS-LQO from the deep-lattice "
        "TFLite model; about 4.5 for a transparent copy.",
    ),
    VisqolMode(
        name="visqol_audio",
        mode="audio",
        sample_rate=48000,
        domains=None,
        description="ViSQOL v3 audio mode of the mono downmix at 48 kHz, MOS-LQO from the nu-SVR model; "
        "about 4.73 for a transparent copy.",
    ),
)

METRIC_NAMES: tuple[str, ...] = tuple(mode.name for mode in MODES)


def _no_fallback(problem: str) -> CodecbenchError:
    return CodecbenchError(
        f"visqol_speech: {problem}. Refusing to fall back to visqol-python's polynomial speech mapping "
        f"(it scores clean speech 5.0); install the extra with: pip install 'codecbench[{EXTRA}]', "
        f"or select metrics=[visqol_audio]"
    )


def _create_api(mode: VisqolMode, speech_model: str | None):
    """A created ``visqol.VisqolApi`` for ``mode``; raises CodecbenchError instead of any fallback."""
    try:
        from visqol import VisqolApi
        from visqol.quality_mapper import SvrSimilarityToQualityMapper, TFLiteSpeechQualityMapper
    except ImportError as exc:
        raise missing_extra("visqol-python", EXTRA) from exc

    api = VisqolApi()
    if mode.mode == "audio":
        api.create(mode="audio", search_window=SEARCH_WINDOW)
        expected = SvrSimilarityToQualityMapper
    else:
        try:
            api.create(
                mode="speech", search_window=SEARCH_WINDOW, use_lattice_model=True, lattice_model_path=speech_model
            )
        except ImportError as exc:
            raise _no_fallback(f"{missing_extra('ai-edge-litert', EXTRA)} ({exc})") from exc
        except Exception as exc:  # a missing or corrupt model file, a runtime that cannot load it
            raise _no_fallback(
                f"the TFLite lattice model {speech_model or '(bundled)'} could not be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        expected = TFLiteSpeechQualityMapper
    mapper = getattr(getattr(api, "_manager", None), "quality_mapper", None)
    if not isinstance(mapper, expected):
        found = type(mapper).__name__
        if mode.mode == "speech":
            raise _no_fallback(f"expected visqol-python to map with {expected.__name__}, found {found}")
        raise CodecbenchError(f"visqol_audio: expected visqol-python to map with {expected.__name__}, found {found}")
    return api, mapper


def _evaluator_info(mode: VisqolMode, mapper) -> dict:
    """Provenance of one mode: package versions, model file and sha256, rate, downmix, resampler."""
    model = Path(mapper.model_path)
    runtime = "ai-edge-litert" if mode.mode == "speech" else "libsvm-official"
    return {
        "package": "visqol-python",
        "version": package_version("visqol-python"),
        "standard": "ViSQOL v3 (pure-Python port of google/visqol)",
        "mode": mode.mode,
        "quality_mapper": "deep-lattice TFLite model" if mode.mode == "speech" else "libsvm nu-SVR model",
        "model": model.name,
        "model_sha256": file_sha256(model),
        "runtime": {"package": runtime, "version": package_version(runtime)},
        "numba": package_version("numba"),  # visqol-python's JIT kernels: bit-exact with or without
        "search_window": SEARCH_WINDOW,
        "sample_rate": mode.sample_rate,
        "downmix": "mean over channels",
        "resampler": resampler_info(),
    }


def _describe(info: dict) -> str:
    """One line, e.g. ``visqol-python==3.8.0 (ViSQOL v3, speech mode, model x.tflite sha256:0123abcd4567, ...)``."""
    runtime = info["runtime"]
    return (
        f"visqol-python=={info['version']} (ViSQOL v3, {info['mode']} mode, {info['quality_mapper']} "
        f"{info['model']} sha256:{info['model_sha256'][:12]} via {runtime['package']}=={runtime['version']}, "
        f"{info['sample_rate']} Hz)"
    )


# -- the task -----------------------------------------------------------------------


class VisqolTask(Task):
    """ViSQOL v3 speech-mode and audio-mode MOS-LQO against the reference, via visqol-python.

    ``metrics``: names from ``METRIC_NAMES`` (default: both).
    ``speech_model``: path of the speech-mode TFLite lattice model (default:
    the one bundled with visqol-python).
    Building the task loads the models and reads package versions; a missing
    package or an unloadable speech model fails here, naming the pip extra.
    """

    name = "visqol"

    def __init__(self, metrics: Iterable[str] | str | None = None, speech_model: str | None = None):
        names = select_names(self.name, metrics, METRIC_NAMES)
        modes = {mode.name: mode for mode in MODES}
        self._speech_model = str(speech_model) if speech_model is not None else None
        self._modes = tuple(modes[name] for name in names)
        self._apis, self._evaluators = {}, {}
        for mode in self._modes:
            api, mapper = _create_api(mode, self._speech_model)
            self._apis[mode.name] = api
            self._evaluators[mode.name] = _evaluator_info(mode, mapper)
        self._metrics = tuple(
            Metric(
                name=mode.name,
                unit="MOS-LQO",
                higher_is_better=True,
                range=VISQOL_RANGE,
                evaluator=_describe(self._evaluators[mode.name]),
                description=mode.description,
                domains=mode.domains,
                sample_rate=mode.sample_rate,
            )
            for mode in self._modes
        )

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self._metrics

    def params(self) -> dict:
        return {"metrics": [mode.name for mode in self._modes], "speech_model": self._speech_model}

    def evaluator_info(self) -> dict:
        """Per metric: package and version, mode, model file and sha256, runtime, rate, downmix, resampler."""
        return copy.deepcopy(self._evaluators)

    def _measure(self, mode: VisqolMode, pair: SignalPair) -> float:
        """MOS-LQO of ``pair`` in ``mode``; visqol's errors become MetricFailure with the reason."""
        reference, reconstruction = pair.mono_at(mode.sample_rate)
        try:
            return self._apis[mode.name].measure_from_arrays(reference, reconstruction, mode.sample_rate).moslqo
        except Exception as exc:
            raise MetricFailure(
                f"visqol ({mode.mode} mode) raised {type(exc).__name__}: {exc} (reference "
                f"{seconds_text(reference, mode.sample_rate)}, reconstruction "
                f"{seconds_text(reconstruction, mode.sample_rate)} at {mode.sample_rate} Hz)"
            ) from exc

    def score(self, reference: Audio, reconstruction: Audio, item: Item) -> TaskRow:
        """Values of the metrics that apply to ``item.domain``; failures with their reasons."""
        pair = SignalPair(reference, reconstruction, item.id)
        return self.compute_metrics(item, {mode.name: partial(self._measure, mode, pair) for mode in self._modes})
