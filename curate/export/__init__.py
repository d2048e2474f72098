"""Balanced export of a subset: folders with a manifest, faceswap and DeepFaceLab face-sets."""
