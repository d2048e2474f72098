"""Hand labels of videos (bench/labels/<video>.json): shot cuts and head boxes per person at keyframes.

Boxes between two keyframes of a shot are interpolated linearly for the people in both; after a shot's
last keyframe its heads are held. A detected face belongs to the head box that holds its centre (the
nearest centre when several do), each box widened by ``MARGIN`` of its size on every side (hand-drawn
boxes are tight around a turned face's nose); a face on no labelled head, or on the back of a head, is
not a face.
"""
from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABELS = Path(__file__).parent / "labels"
MARGIN = 0.15


@dataclass
class VideoLabels:
    """One video's labels."""

    video: str
    cuts: list[int]
    people: dict[str, str]
    keyframes: list[dict]

    @classmethod
    def load(cls, path: Path) -> VideoLabels:
        """Read a labels JSON."""
        d = json.loads(Path(path).read_text())
        kfs = sorted(d["keyframes"], key=lambda k: k["frame"])
        return cls(d["video"], sorted(c for c in d["cuts"] if c > 0), d["people"], kfs)

    def shot(self, frame: int) -> int:
        """Shot number of a frame."""
        return bisect_right(self.cuts, frame)

    def heads(self, frame: int) -> list[tuple[str, np.ndarray, str]]:
        """(person, box x y w h, face view) of every labelled head in a frame."""
        shot = self.shot(frame)
        kfs = [k for k in self.keyframes if self.shot(k["frame"]) == shot]
        before = [k for k in kfs if k["frame"] <= frame]
        after = [k for k in kfs if k["frame"] >= frame]
        if not before:
            return []
        prev = before[-1]
        if not after or prev["frame"] == frame:
            return [(h["person"], np.asarray(h["box"], float), h.get("face", "frontal")) for h in prev["heads"]]
        nxt = after[0]
        t = (frame - prev["frame"]) / max(1, nxt["frame"] - prev["frame"])
        later = {h["person"]: h for h in nxt["heads"]}
        out = []
        for h in prev["heads"]:
            if h["person"] in later:
                box = (1 - t) * np.asarray(h["box"], float) + t * np.asarray(later[h["person"]]["box"], float)
                out.append((h["person"], box, h.get("face", "frontal")))
        return out

    def person_of(self, frame: int, bbox: list[float]) -> tuple[str | None, str | None]:
        """(person, face view) of the head a detected face box lies on, or (None, None)."""
        x, y, w, h = bbox
        cx, cy = x + w / 2, y + h / 2
        best, best_d = (None, None), np.inf
        for person, (hx, hy, hw, hh), view in self.heads(frame):
            mx, my = MARGIN * hw, MARGIN * hh
            if hx - mx <= cx <= hx + hw + mx and hy - my <= cy <= hy + hh + my:
                d = np.hypot((cx - hx - hw / 2) / hw, (cy - hy - hh / 2) / hh)
                if d < best_d:
                    best, best_d = (person, view), d
        return best


def is_real_face(person: str | None, view: str | None) -> bool:
    """Whether a labelled detection shows a face (not a lamp, a hand, the back of a head or a picture)."""
    return person is not None and person != "picture" and view != "back"
