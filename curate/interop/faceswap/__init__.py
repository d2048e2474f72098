"""faceswap's formats: the alignments file and PNG metadata (``codec``) and its aligned-face geometry
(``geometry``)."""
