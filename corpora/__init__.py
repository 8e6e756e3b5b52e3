"""Readers for public corpora (read in place from ``../shared/corpora``) and our synthetic samples.

``corpora/samples/`` holds synthetic notes written for this project; no corpus file is copied here.
"""

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
