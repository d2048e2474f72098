"""The FiftyOne App side: ``launch`` (`faceset app`), ``coverage`` (the A/B coverage grid, its cell views and the
curation behind the panel), ``mesh_view`` (the stored mesh as App keypoints) and ``plugin`` (the App plugin:
panel and operators)."""
