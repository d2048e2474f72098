"""Face-set formats of other tools: faceswap alignments (.fsa + face PNGs) and DeepFaceLab aligned JPGs."""
