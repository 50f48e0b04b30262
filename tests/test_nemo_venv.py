"""NeMo's audio codecs at random weights, in a virtual environment of their own.

nemo_toolkit[tts] 3.0.0 would downgrade hydra-core, omegaconf, fsspec and
packaging in the main environment, so scripts/nemo_venv.py makes a venv with
``--system-site-packages`` (the main environment's torch reused, pinned by a
pip constraint) and installs it there: about 2.5 minutes and 1.6 GB the first
time on these machines, reused afterwards. This test runs by default; set
CODECBENCH_TEST_NEMO=0 to skip it. Where the venv cannot be made (no access to
PyPI), it is skipped, except under CI, where it fails (conftest.missing).

tests/nemo_check.py runs inside the venv over every ``conf/codec/nemo_*.yaml``
(its docstring lists the checks) and prints a JSON report; the facts it reports
are checked again here against the model cards.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO, missing

pytestmark = pytest.mark.skipif(os.environ.get("CODECBENCH_TEST_NEMO") == "0",
                                reason="CODECBENCH_TEST_NEMO=0: the NeMo venv test is switched off")

#: id -> (sample rate Hz, samples per frame, codebook size, kbit/s the model card states)
CARDS = {
    "nemo_audio_codec_22k": (22050, 256, 1000, 6.9),
    "nemo_audio_codec_44k": (44100, 512, 1000, 6.9),
    "nemo_mel_codec_22k": (22050, 256, 1000, 6.9),
    "nemo_mel_codec_44k": (44100, 512, 1000, 6.9),
    "nemo_low_frame_rate_22k": (22050, 1024, 2016, 1.89),
}


@pytest.fixture(scope="module")
def nemo_python() -> str:
    made = subprocess.run([sys.executable, "scripts/nemo_venv.py"], cwd=REPO, capture_output=True, text=True,
                          timeout=1800)
    if made.returncode != 0:
        missing(f"could not create the NeMo venv (scripts/nemo_venv.py): {made.stderr[-2000:]}")
    return made.stdout.strip().splitlines()[-1]


def test_every_nemo_yaml_codes_at_random_weights_and_reloads(nemo_python, tmp_path) -> None:
    done = subprocess.run([nemo_python, "tests/nemo_check.py", str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, f"tests/nemo_check.py failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["nemo_version"] == "3.0.0"
    import torch

    assert report["torch"] == torch.__version__  # the main environment's torch, not another one
    assert sorted(report["codecs"]) == sorted(CARDS)
    for codec_id, result in report["codecs"].items():
        rate, hop, size, card_kbps = CARDS[codec_id]
        nominal = 8 * rate / hop * math.log2(size) / 1000
        assert result["nominal_kbps"] == pytest.approx(nominal, rel=1e-12)
        assert nominal == pytest.approx(card_kbps, rel=0.005)
        assert result["params"]["vector_quantizer"] == 0  # FSQ has no learned codebook
        for item in result["items"]:
            frames = math.ceil(item["frames"] / hop)
            assert item["code_frames"] == frames and item["bits"] == math.ceil(8 * frames * math.log2(size))
            assert item["kbps_padded"] == pytest.approx(nominal, abs=1e-3 / (frames * hop / rate))
            assert item["kbps"] >= item["kbps_padded"]  # short items pay for their partial last frame
    assert sum(report["codecs"]["nemo_low_frame_rate_22k"]["params"].values()) == pytest.approx(112.7e6, abs=5e4)
    assert sum(report["codecs"]["nemo_mel_codec_44k"]["params"].values()) == pytest.approx(64.4e6, abs=5e4)
    layouts = report["layouts"]
    assert "expected hop_length 256, found 1024" in layouts["wrong_architecture"]
    assert "shape mismatches: audio_decoder." in layouts["misfit_weights"]
    assert "'nvidia/mel-codec-44khz' are not on this machine" in layouts["missing_weights"]
