"""DeepFaceLab's formats: the aligned JPG with its DFLJPG metadata (``codec``) and its face-type geometry
(``geometry``)."""
