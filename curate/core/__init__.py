"""Per-face geometry and files, with no model and no database: alignment, landmarks, the mesh, pose, quality,
expression from points, crop hashes, the torch device, reading media, safetensors headers, progress. Imports
nothing else of the project (checked by tests/faceset/test_architecture.py); train and convert build on it."""
