"""A before/after contact sheet of a converted video: a few frames spread over its length, each the first
frame with a swapped face at or after its slot, original left and converted right. Constant memory."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from curate.core.media import write_image


class ContactSheet:
    """Collects up to ``picks`` (before, after) pairs while frames stream past; ``save`` writes one PNG."""

    def __init__(self, total_frames: int, picks: int = 6, width: int = 320):
        self.slots = np.linspace(0, max(total_frames, 1), picks + 1)[:-1].round().astype(int).tolist()
        self.width = width
        self.rows: list[np.ndarray] = []
        self.labels: list[str] = []

    def offer(self, index: int, before: np.ndarray, after: np.ndarray, swapped: int) -> None:
        """Keep this frame if its slot is open and it has a swapped face."""
        slot = len(self.rows)
        if slot >= len(self.slots) or index < self.slots[slot] or not swapped:
            return
        h, w = before.shape[:2]
        size = (self.width, max(1, round(h * self.width / w)))
        pair = [cv2.resize(np.ascontiguousarray(im[..., :3]), size, interpolation=cv2.INTER_AREA) for im in (before, after)]
        self.rows.append(np.concatenate([pair[0], np.full((size[1], 4, 3), 255, np.uint8), pair[1]], axis=1))
        self.labels.append(f"frame {index}")
        while len(self.rows) < len(self.slots) and index >= self.slots[len(self.rows)]:
            self.slots.pop(len(self.rows))  # slots this frame already passed stay unfilled

    def save(self, path: Path) -> Path | None:
        """Write the sheet (RGB PNG) if any frame had a swapped face."""
        if not self.rows:
            return None
        rows = []
        for row, label in zip(self.rows, self.labels):
            row = row.copy()
            cv2.putText(row, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2)
            rows.append(row)
            rows.append(np.full((4, row.shape[1], 3), 255, np.uint8))
        write_image(np.concatenate(rows[:-1], axis=0), path)
        return path
