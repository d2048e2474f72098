"""Reading odd and broken inputs: each gives pixels or one clear reason."""
from __future__ import annotations

import numpy as np
import pytest
from badinput import make_bad_inputs

from curate.core.media import MediaError, SourceFrames, iter_video, list_sources, load_image, probe_video


@pytest.fixture(scope="module")
def bad(samples, tmp_path_factory):
    return make_bad_inputs(samples, tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("kind", ["cmyk", "sixteen_bit", "grey16", "alpha", "unicode"])
def test_odd_formats_load_as_rgb8(bad, kind):
    rgb = load_image(bad[kind])
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[:2] == (240, 320)
    assert 40 < rgb.mean() < 220


def test_exif_rotation_is_applied(bad):
    assert load_image(bad["exif_rotated"]).shape[:2] == (240, 320)


def test_rgba_sample_loads(samples):
    assert load_image(samples / "32bit.png").shape[2] == 3


@pytest.mark.parametrize(
    "kind,reason",
    [("zero_byte", "empty file"), ("truncated", "truncated"), ("not_image", "not an image")],
)
def test_broken_images_give_a_reason(bad, kind, reason):
    with pytest.raises(MediaError, match=reason):
        load_image(bad[kind])


def test_broken_video_gives_a_reason(bad):
    with pytest.raises(MediaError, match="video"):
        probe_video(bad["bad_video"])
    with pytest.raises(MediaError):
        list(iter_video(bad["bad_video"]))


def test_video_is_streamed_every_nth(samples):
    info = probe_video(samples / "short_hamilton_clip.mp4")
    assert (info.width, info.height, info.frames) == (640, 360, 275)
    frames = [i for i, rgb in iter_video(samples / "short_hamilton_clip.mp4", every=50, start=60)]
    assert frames == [100, 150, 200, 250]


def test_list_sources_walks_folders_and_reports_missing(bad, samples, tmp_path):
    found, missing = list_sources([bad["zero_byte"].parent, samples / "short_hamilton_clip.mp4", tmp_path / "nope"])
    names = {s.path.name for s in found}
    assert {"empty.jpg", "broken.mp4", "visage-é_顔 😀.jpg", "short_hamilton_clip.mp4"} <= names
    assert [s.is_video for s in found if s.path.name == "broken.mp4"] == [True]
    assert missing == [(tmp_path / "nope", "no such file or folder")]


def test_source_frames_seek_across_gaps_and_give_the_decoded_frames(samples):
    """Frames asked for in order, far apart: a seeking reader jumps (evenly timed video) and still returns
    exactly the frames a full decode gives; a gone source gives None."""
    clip = samples / "short_hamilton_clip.mp4"
    wanted = [3, 4, 270]
    full = {i: rgb for i, rgb in iter_video(clip) if i in wanted}
    for seek in (False, True):
        frames = SourceFrames(seek=seek)
        for i in wanted:
            assert np.array_equal(frames.get(str(clip), i, True), full[i]), (seek, i)
    assert frames.get(str(samples / "missing.mp4"), 0, True) is None
