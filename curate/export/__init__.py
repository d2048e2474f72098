"""Balanced export of a subset: which faces (``select``) and the writing (``balanced``): folders with a manifest,
faceswap and DeepFaceLab face-sets."""

FORMATS = ("folder", "faceswap", "dfl")  # folder: crops + manifest; faceswap: alignments.fsa + PNGs; dfl: aligned JPGs
