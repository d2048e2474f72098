"""Every field faceset writes on a face sample, with what it holds: the one list of their names (docs/extract.md
shows the same table; a test checks a real dataset against it). FiftyOne's own fields (id, filepath, tags,
metadata, created_at, last_modified_at) are left out."""
from __future__ import annotations

FIFTYONE_FIELDS = frozenset({"id", "filepath", "tags", "metadata", "created_at", "last_modified_at"})

FIELDS: dict[str, str] = {
    # extract
    "face_key": "unique key of the face: source id, frame, face index",
    "source": "the source file's path",
    "source_type": "video or image",
    "frame": "frame number in the video (0 for images)",
    "face_index": "the face's number within its frame",
    "subset": "A (the face to replace) or B (the face to paste in); also a tag",
    "bbox": "detector box [x, y, w, h] in source pixels",
    "frame_size": "the source frame's [w, h]",
    "landmarks": "68 Keypoints on the crop (relative coordinates)",
    "source_landmarks": "the 68 points in source pixels",
    "align_matrix": "2x3 source -> crop similarity",
    "landmarks_ok": "False when the landmark model could not place the face",
    "mesh": "mediapipe: the 468-point FaceMesh on the crop (x, y relative)",
    "mesh_z": "mediapipe: each mesh point's depth, in the crop's unit",
    "detector_keypoints": "mediapipe: BlazeFace's 6 keypoints in source pixels",
    "det_score": "detector confidence",
    "yaw": "head yaw in degrees",
    "pitch": "head pitch in degrees",
    "roll": "head roll in degrees",
    "pose_method": "the estimator that made the angles",
    "blur": "sharpness: variance of the Laplacian inside the landmark hull",
    "brightness": "mean luma inside the hull",
    "face_size": "larger side of the landmarks' box, source pixels",
    "embedding": "L2-normalised identity vector",
    "expression": "Classification: neutral, smile, mouth_open, eyes_closed, brows_raised, unsure",
    "smile": "expression score in [0, 1]",
    "mouth_open": "expression score in [0, 1]",
    "eyes_closed": "expression score in [0, 1]",
    "brows_raised": "expression score in [0, 1]",
    "backend": "the analysis backend",
    "crop_hash": "perceptual hash of the aligned crop (near-duplicates)",
    # tracks
    "shot": "the video shot between cuts",
    "track": "the face track (an image's face is a track of its own)",
    "is_face": "False for detections in a track the landmark model never placed",
    # identity
    "identity_ok": "True / False / None (unsure): the face is the identity",
    "identity_distance": "the track's distance to the identity",
    "identity_cluster": "identity cluster (-1 unsure)",
    "identity_second_look": "the second look's distance, for tracks dlib cannot judge",
    "embedding_faceres": "faceres vectors the second look used",
    # curation
    "dup_group": "near-duplicate group within the subset",
    "dup_keep": "the face dedupe keeps of its group",
    "keep": "checked by eye: never removed by identity clean-up or dedupe",
    "mesh_keypoints": "the mesh drawn as App keypoints (`draw mesh`)",
    "trash_batch": "in <dataset>-trash: the delete batch a face belongs to",
    # masks and imports
    "mask_learned": "the face-set's learned occlusion mask (Segmentation)",
    "mask_fixed": "a user-fixed mask (Segmentation)",
    "mask_names": "imported masks: field -> the tool's own mask name",
    "xseg_polygons": "DeepFaceLab XSeg polygons (Polylines)",
}
MASK_PREFIX = "mask_"  # mask_<name>: masks imported from faceswap, one field per mask


def is_known_field(name: str) -> bool:
    """Whether faceset writes a field of this name (FiftyOne's own fields count too)."""
    return name in FIELDS or name in FIFTYONE_FIELDS or name.startswith(MASK_PREFIX)
