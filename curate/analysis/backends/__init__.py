"""The face-analysis backends, one package or module each: ``mediapipe`` (BlazeFace + FaceMesh, the default),
``dlib``, ``insightface``, and ``human`` (the Human project's faceres embedder and emotion network). They are
chosen by name through :mod:`curate.analysis.registry`."""
