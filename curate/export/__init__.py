"""Balanced export of a subset (``balanced``): folders with a manifest, faceswap and DeepFaceLab face-sets."""

FORMATS = ("folder", "faceswap", "dfl")  # folder: crops + manifest; faceswap: alignments.fsa + PNGs; dfl: aligned JPGs
