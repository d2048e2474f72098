"""Work on a stored face-set: coverage gaps (``gaps``), who each face is (``identity``, over ``tracks``),
near-duplicates (``dedupe``), UMAP (``umap``), keep marks (``keep``) and recomputed pose (``pose``)."""
