"""Writes a tiny ECAPA-TDNN model folder; run inside the speechbrain venv by tests/test_speechbrain_venv.py.

The folder is laid out like ``speechbrain/spkrec-ecapa-voxceleb``
(hyperparams.yaml whose ``pretrained_path`` still names the hub repository,
embedding_model.ckpt, mean_var_norm_emb.ckpt, classifier.ckpt,
label_encoder.txt), with the real ECAPA-TDNN architecture at small sizes and
random weights (seed 0). Prints one JSON object: the folder, the embedding
size and the sha256 of the module state the ``speaker`` task must report
after loading it.

Usage: python tests/speechbrain_check.py MODEL_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: small ECAPA-TDNN sizes (the hub model: 80 mels, channels 1024 x4 + 3072, 192 dims).
N_MELS = 24
LIN_NEURONS = 48

HYPERPARAMS = f"""\
# Laid out as speechbrain/spkrec-ecapa-voxceleb's hyperparams.yaml, at small sizes.
n_mels: {N_MELS}
pretrained_path: speechbrain/spkrec-ecapa-voxceleb
out_n_neurons: 9

compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [32, 32, 32, 32, 96]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 16
    se_channels: 16
    res2net_scale: 4
    lin_neurons: {LIN_NEURONS}

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: {LIN_NEURONS}
    out_neurons: !ref <out_n_neurons>

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""


def make_model_folder(folder: Path) -> str:
    """Write the folder; returns the sha256 of the module state the task should report."""
    import torch
    from hyperpyyaml import load_hyperpyyaml

    from codecbench.tasks.speaker_models import state_dict_sha256

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyperparams.yaml").write_text(HYPERPARAMS)
    torch.manual_seed(0)
    hparams = load_hyperpyyaml(HYPERPARAMS)
    torch.save(hparams["embedding_model"].state_dict(), folder / "embedding_model.ckpt")
    torch.save(hparams["classifier"].state_dict(), folder / "classifier.ckpt")
    hparams["mean_var_norm_emb"]._save(folder / "mean_var_norm_emb.ckpt")
    encoder = hparams["label_encoder"]
    encoder.update_from_iterable([f"spk{k}" for k in range(9)])
    encoder.save(folder / "label_encoder.txt")
    return state_dict_sha256(torch.nn.ModuleDict(hparams["modules"]))


def main() -> None:
    folder = Path(sys.argv[1])
    sha = make_model_folder(folder)
    print(json.dumps({"model": str(folder), "embedding_dim": LIN_NEURONS, "weights_sha256": sha}))


if __name__ == "__main__":
    main()
