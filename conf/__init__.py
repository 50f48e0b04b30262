"""Hydra configuration shipped with codecbench (config groups codec/, dataset/, task/, paths/)."""
