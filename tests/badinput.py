"""Builders of every kind of bad or odd input file, from the sample media."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def make_bad_inputs(samples: Path, folder: Path) -> dict[str, Path]:
    """Write one file per bad/odd input kind into folder; returns kind -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    obama = Image.open(samples / "obama_small.jpg").convert("RGB")
    files: dict[str, Path] = {}

    files["zero_byte"] = folder / "empty.jpg"
    files["zero_byte"].write_bytes(b"")
    data = (samples / "obama.jpg").read_bytes()
    files["truncated"] = folder / "truncated.jpg"
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["not_image"] = folder / "notes.png"
    files["not_image"].write_text("this is not a picture\n")
    files["bad_video"] = folder / "broken.mp4"
    files["bad_video"].write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    files["no_face"] = folder / "no_face.jpg"
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(files["no_face"])

    files["cmyk"] = folder / "cmyk.jpg"
    obama.convert("CMYK").save(files["cmyk"])
    files["sixteen_bit"] = folder / "sixteen_bit.png"
    rgb16 = np.asarray(obama).astype(np.uint16) * 257
    cv2.imwrite(str(files["sixteen_bit"]), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    files["grey16"] = folder / "grey16.png"
    cv2.imwrite(str(files["grey16"]), np.asarray(obama.convert("L")).astype(np.uint16) * 257)
    files["alpha"] = folder / "alpha.png"
    rgba = obama.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.full(obama.size[::-1], 255, np.uint8)))
    rgba.save(files["alpha"])
    # stored rotated a quarter turn, with EXIF orientation 6 ("rotate 90° clockwise to display")
    files["exif_rotated"] = folder / "exif_rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    obama.transpose(Image.Transpose.ROTATE_90).save(files["exif_rotated"], exif=exif.tobytes())
    files["unicode"] = folder / "visage-é_顔 😀.jpg"
    obama.save(files["unicode"])
    return files


GOOD_KINDS = ("cmyk", "sixteen_bit", "grey16", "alpha", "exif_rotated", "unicode")
FAILING_KINDS = ("zero_byte", "truncated", "not_image", "bad_video")
