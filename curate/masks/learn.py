"""`faceset mask train|apply`: the face-set's learned occlusion mask, trained on :mod:`curate.masks.labels`
with synthetic occluders (``curate.masks.net``), applied to every face: PNGs beside the crops, set as the
``mask_learned`` segmentation (the App overlays it; export, training and conversion use it), locally or on a
Dask cluster."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.core.media import fingerprint, load_image, write_image
from curate.dataset.store import load_dataset, media_dir
from curate.extract.cluster import open_task_dataset, use_database
from curate.masks.fields import LEARNED_FIELD
from curate.masks.labels import face_samples, landmark_points, training_set
from curate.masks.net import MaskTrainSettings, load_masknet, predict_masks, save_masknet, train_masknet


def default_model_path(name: str) -> Path:
    """Where `faceset mask train` keeps a dataset's mask network."""
    return media_dir(load_dataset(name)).parent / "masks" / f"{name}-mask.safetensors"


def mask_train(name: str, settings: MaskTrainSettings, subset: str | None = None, out: Path | None = None,
               progress: bool = True, max_faces: int = 1500) -> tuple[Path, dict[str, Any]]:
    """Train a dataset's mask network on up to ``max_faces`` of its faces (all real labels first); returns its
    path and a summary (faces, real labels, hands, losses)."""
    from tqdm import tqdm

    data = training_set(name, subset, seed=settings.seed, max_faces=max_faces)
    with tqdm(total=settings.iters, desc="mask train", unit="it", disable=not progress, dynamic_ncols=True) as bar:
        def tick(it: int, loss: float) -> None:
            bar.update(1)
            if it % 20 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")
        net, losses = train_masknet(data["crops"], data["targets"], data["bank"], settings, tick, data["real"])
    net.coverage = data["coverage"]  # how its crops were framed: other crops are re-aligned to it
    summary = {"faces": len(data["ids"]), "real_labels": int(data["real"].sum()), "hand_cutouts": len(data["bank"].hands),
               "textures": len(data["bank"].textures), "iters": settings.iters, "size": settings.size,
               "coverage": data["coverage"],
               "first_loss": float(np.mean(losses[:20])) if losses else None,
               "last_loss": float(np.mean(losses[-20:])) if losses else None}
    path = save_masknet(Path(out) if out else default_model_path(name), net, settings.size, summary)
    return path, summary


@dataclass(frozen=True)
class MaskChunk:
    """Faces one mask task predicts: their ids, crops and landmarks ([0, 1] crop coordinates), the network,
    where the PNGs go."""

    dataset: str
    model: str
    device: str
    folder: str
    ids: tuple[str, ...]
    paths: tuple[str, ...]
    points: tuple[Any, ...]
    database_uri: str | None = None

    @property
    def label(self) -> str:
        """How an error names this task."""
        return f"{self.dataset}: faces {self.ids[0]}..{self.ids[-1]}"


_NETS: dict[tuple[str, str, str], tuple[Any, int]] = {}


def _masknet(model: str, device: str) -> tuple[Any, int]:
    """The mask network of this file on this device, loaded once per process (again once the file changes:
    a network trained anew to the same path)."""
    try:
        key = (model, device, fingerprint(Path(model)))
    except OSError:  # missing: load_masknet says so
        return load_masknet(Path(model), device)
    if key not in _NETS:
        _NETS[key] = load_masknet(Path(model), device)
    return _NETS[key]


def predict_chunk(chunk: MaskChunk, batch: int = 64) -> dict[str, str]:
    """Masks of a chunk's faces as PNGs (face id -> path); the same files on every run (safe to retry)."""
    net, size = _masknet(chunk.model, chunk.device)
    folder = Path(chunk.folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for k in range(0, len(chunk.ids), batch):
        crops = [load_image(Path(p)) for p in chunk.paths[k:k + batch]]  # (sizes may differ: imported sets)
        marks = [np.asarray(pts, dtype=np.float64) * crop.shape[0] for pts, crop in zip(chunk.points[k:k + batch], crops)]
        for sid, prob in zip(chunk.ids[k:k + batch], predict_masks(net, crops, size, marks)):
            png = folder / f"{sid}.png"
            write_image(np.repeat(((prob > 0.5) * 255).astype(np.uint8)[..., None], 3, 2), png)
            out[sid] = str(png)
    return out


def apply_chunk(chunk: MaskChunk) -> int:
    """Cluster task: predict a chunk's masks and store them on its faces (worker side)."""
    use_database(chunk.database_uri)
    _store_masks(open_task_dataset(chunk.dataset), predict_chunk(chunk))
    return len(chunk.ids)


def _store_masks(ds: Any, pngs: dict[str, str]) -> None:
    import fiftyone as fo

    if not ds.has_sample_field(LEARNED_FIELD):
        ds.add_sample_field(LEARNED_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Segmentation)
    ds.select(list(pngs)).set_values(LEARNED_FIELD, {sid: fo.Segmentation(mask_path=p) for sid, p in pngs.items()},
                                     key_field="id")


def mask_apply(name: str, model: Path | None = None, subset: str | None = None, device: str = "auto",
               progress: bool = True, cluster: str | None = None, chunk: int = 512) -> int:
    """Run the mask network on every face; PNG masks beside the crops, ``mask_learned`` segmentations set.

    ``cluster``: a Dask scheduler's address (else $DASK_SCHEDULER_ADDRESS): chunks of ``chunk`` faces run on
    its workers, each storing its own faces' masks; none: here. The model and crops must be on a shared path.
    """
    import fiftyone as fo
    from tqdm import tqdm

    from curate.extract.cluster import cluster_address, connect, run_tasks

    ds, view = face_samples(name, subset)
    model = (Path(model) if model else default_model_path(name)).absolute()
    _masknet(str(model), device)  # a missing or foreign file: one error before any work (here, the one load)
    folder = str(media_dir(ds) / "masks" / "learned")
    ids, paths, landmarks = view.values(["id", "filepath", "landmarks"])
    points = [landmark_points(m).tolist() for m in landmarks]
    address = cluster_address(cluster)
    chunks = [MaskChunk(name, str(model), device, folder, tuple(ids[k:k + chunk]), tuple(paths[k:k + chunk]),
                        tuple(points[k:k + chunk]), fo.config.database_uri) for k in range(0, len(ids), chunk)]
    bar = tqdm(total=len(ids), desc="mask apply", unit="face", disable=not progress, dynamic_ncols=True)
    try:
        if address is None:
            for c in chunks:
                _store_masks(ds, predict_chunk(c))
                bar.update(len(c.ids))
            return len(ids)
        client = connect(address)
        try:
            failed = run_tasks(client, chunks, lambda c, n: bar.update(n), fn=apply_chunk)
        finally:
            client.close()
    finally:
        bar.close()
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(chunks)} mask tasks failed; re-run to finish them: "
                           f"{': '.join(failed[0])}")
    ds.reload()
    return len(ids)
