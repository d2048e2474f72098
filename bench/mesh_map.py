"""Re-derive the FaceMesh -> iBUG 68 index map (curate.core.mesh.MESH_TO_68) from real faces.

    .venv/bin/python bench/mesh_map.py

For every face that dlib (HOG + 68-point predictor) and the mediapipe backend both find on the sample photos
and clip, with a mesh and |yaw| < 25 deg, each mesh vertex's distance to each dlib point is taken in units of
the inter-ocular distance; per mirror pair of dlib points the mirror pair of vertices with the smallest summed median distance wins
(so the map is left-right symmetric, and mirrored faces give mirrored landmarks). Prints that map,
the shipped map, and the median error of both (the shipped one may differ where a vertex on the same contour
is semantically right, e.g. eyelid vertices rather than the ring around the eye).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from curate.analysis.registry import create_analyzer
from curate.core.landmarks import MIRROR
from curate.core.mesh import MESH_TO_68, mesh_mirror
from curate.core.pose import pose_from_mesh
from curate.core.media import iter_video, list_sources, load_image

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "datasets" / "samples"


def _frames():
    sources, _ = list_sources([SAMPLES])
    for src in sources:
        if src.is_video:
            yield from (rgb for _, rgb in iter_video(src.path, every=3))
        else:
            yield load_image(src.path)


def collect() -> list[tuple[np.ndarray, np.ndarray]]:
    """(dlib 68 points, mesh 468x3) of the near-frontal faces both backends find."""
    dl, mp = create_analyzer("dlib"), create_analyzer("mediapipe")
    pairs = []
    for rgb in _frames():
        meshes = []
        for det in mp.detector.detect(rgb):
            found = mp.locate(rgb, det)
            if found.ok and abs(pose_from_mesh(found.mesh).yaw) < 25:
                meshes.append(found.mesh)
        for det in dl.detector.detect(rgb):
            pts = dl.landmarker.landmarks(rgb, det)
            for mesh in meshes:
                if np.linalg.norm(mesh[:, :2].mean(0) - pts.mean(0)) < 0.2 * np.ptp(pts[:, 0]):
                    pairs.append((pts, mesh))
    return pairs


def symmetric_map(med: np.ndarray) -> np.ndarray:
    """Per iBUG point the vertex of least median error, chosen in mirror pairs so the map is symmetric."""
    twin = mesh_mirror()
    best = np.zeros(68, dtype=np.int64)
    for i in range(68):
        j = int(MIRROR[i])
        cost = med[i] + med[j][twin]  # vertex a for point i, its twin for point j
        if i == j:
            cost = np.where(twin == np.arange(len(twin)), cost, np.inf)
        best[i] = int(np.argmin(cost))
        best[j] = int(twin[best[i]])
    return best


def main() -> None:
    pairs = collect()
    dists = []
    for pts, mesh in pairs:
        iod = np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0))
        dists.append(np.linalg.norm(mesh[None, :, :2] - pts[:, None, :], axis=2) / iod)
    med = np.median(np.stack(dists), axis=0)  # 68 x 468
    best = symmetric_map(med)
    print(f"faces used: {len(pairs)}")
    print("nearest map :", best.tolist())
    print("shipped map :", MESH_TO_68.tolist())
    rows = np.arange(68)
    print(f"median error (inter-ocular units): nearest {np.median(med[rows, best]):.3f}, "
          f"shipped {np.median(med[rows, MESH_TO_68]):.3f}")
    print("point  shipped(err)  nearest(err)")
    for i in rows:
        print(f"{i:5d}  {MESH_TO_68[i]:4d} ({med[i, MESH_TO_68[i]]:.3f})  {best[i]:4d} ({med[i, best[i]]:.3f})")


if __name__ == "__main__":
    main()
