"""Conversion: colour transfer, masks and paste-back, smoothing and face following (pure), then whole runs on
the sample media with a tiny trained model: video size/fps/frame count/audio, PNG + alpha (pixels outside the
mask untouched, resume), --only on two_people.jpg, faces-free images, bad input."""
from __future__ import annotations

import shutil
import subprocess
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from convert.blend import alpha_layer, crop_mask, feather, paste_face
from convert.color import color_transfer
from convert.frames import ffmpeg_exe, read_frames
from convert.pipeline import ConvertSettings, convert
from convert.smoothing import LandmarkSmoother
from curate.core.align import alignment_matrix, transform_points, warp_face
from curate.core.media import probe_video

# ---------------------------------------------------------------- pure parts

def has_audio(path: Path) -> bool:
    """Whether a media file has an audio stream (ffmpeg's own stream listing)."""
    done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, check=False)
    return any("Audio:" in line for line in done.stderr.decode(errors="replace").splitlines() if "Stream #" in line)


def _two_tone(seed: int, mean: tuple[float, float, float], spread: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(mean, spread, (64, 64, 3)), 0, 1).astype(np.float32)


def test_colour_transfers_move_statistics_to_the_original_inside_the_mask():
    face, original = _two_tone(0, (0.65, 0.45, 0.35), 0.03), _two_tone(1, (0.4, 0.5, 0.55), 0.06)
    mask = np.zeros((64, 64), np.float32)
    mask[8:56, 8:56] = 1
    original[~mask.astype(bool)] = 1.0  # background must not count
    sel = mask > 0.5
    assert np.array_equal(color_transfer("none", face, original, mask), face)
    rct = color_transfer("rct", face, original, mask)
    lab = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2Lab)[sel]
    assert np.allclose(lab(rct).mean(0), lab(original).mean(0), atol=1.5)
    assert np.allclose(lab(rct).std(0), lab(original).std(0), rtol=0.15)
    lct = color_transfer("lct", face, original, mask)
    assert np.allclose(lct[sel].mean(0), original[sel].mean(0), atol=0.01)
    assert np.allclose(np.cov(lct[sel], rowvar=False), np.cov(original[sel], rowvar=False), atol=2e-3)
    hist = color_transfer("hist", face, original, mask)
    for c in range(3):
        assert np.allclose(np.quantile(hist[sel][:, c], [0.1, 0.5, 0.9]), np.quantile(original[sel][:, c], [0.1, 0.5, 0.9]), atol=0.02)
    with pytest.raises(ValueError, match="colour transfer"):
        color_transfer("avg", face, original, mask)


def test_feather_erodes_blurs_and_leaves_no_faint_tail():
    mask = np.zeros((100, 100), np.float32)
    mask[30:70, 30:70] = 1
    eroded = feather(mask, 5, 0)
    assert eroded.sum() < mask.sum() and eroded[35:65, 35:65].all()
    soft = feather(mask, 0, 6)
    assert 0 < soft[30, 50] < 1 and soft[50, 50] == 1 and soft[5, 5] == 0
    assert (soft[(soft > 0)] >= 1 / 255).all()


def _frame_and_face(load_rgb, analyzer, name="obama.jpg"):
    rgb = load_rgb(name)
    face = analyzer.analyze(rgb)[0]
    return rgb, face.landmarks


@pytest.mark.parametrize("blend", ["alpha", "seamless"])
def test_paste_back_touches_only_the_mask(load_rgb, analyzer, blend):
    rgb, marks = _frame_and_face(load_rgb, analyzer)
    matrix = alignment_matrix(marks, 64, 0.75)
    crop_marks = transform_points(marks, matrix)
    mask = crop_mask("hull", crop_marks, 64)
    frame = rgb.copy()
    yy, xx = np.mgrid[:64, :64]
    checks = ((yy // 8 + xx // 8) % 2).astype(np.float32)
    swapped = np.repeat(checks[..., None], 3, axis=2)  # a pattern no face has
    pasted = paste_face(frame, swapped, mask, matrix, erode=2, blur=6, blend=blend)
    assert pasted is not None
    alpha = alpha_layer(frame.shape, [pasted])
    changed = np.any(frame != rgb, axis=2)
    assert changed.any()
    assert not (changed & (alpha == 0)).any(), "a pixel outside the feathered mask changed"
    x0, y0, x1, y1 = pasted.roi
    assert 0 <= x0 < x1 <= rgb.shape[1] and 0 <= y0 < y1 <= rgb.shape[0]
    # the face lands where it was cut from: re-cut from the pasted frame, the pattern is back in place
    # (alpha: its pixels; seamless: its gradients, so the change from the original correlates with it)
    back = warp_face(frame, matrix, 64).astype(np.float32).mean(2)
    before = warp_face(rgb, matrix, 64).astype(np.float32).mean(2)
    inner = feather(mask, 4, 0) > 0.5
    assert np.corrcoef((back - before)[inner], checks[inner])[0, 1] > 0.6


def test_model_mask_and_both():
    marks = np.array([[x, y] for x in np.linspace(10, 54, 9) for y in np.linspace(10, 54, 8)])[:68]
    learned = np.zeros((64, 64), np.float32)
    learned[:, :32] = 1
    assert np.array_equal(crop_mask("model", marks, 64, learned), learned)
    both = crop_mask("both", marks, 64, learned)
    assert both[:, 40:].sum() == 0 and both[20:40, 15:30].min() == 1
    with pytest.raises(ValueError):
        crop_mask("xseg", marks, 64, learned)


def test_smoothing_damps_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    base = rng.uniform(100, 200, (68, 2))
    smoother = LandmarkSmoother(0.6)
    raw = [base + rng.normal(0, 0.8, base.shape) for _ in range(30)]
    smoothed = [smoother([r])[0] for r in raw]
    jitter = lambda seq: np.mean([np.abs(b - a).mean() for a, b in pairwise(seq)])
    assert jitter(smoothed) < 0.7 * jitter(raw)
    moved = smoother([base + 40])[0]  # a real head movement is not dragged behind
    assert np.abs(moved - (base + 40)).mean() < 0.5
    two = smoother([base + 40, base + 400])  # a new face is not blended with anything
    assert np.allclose(two[1], base + 400)


def test_contact_sheet_spreads_its_frames_and_skips_frames_without_swaps(tmp_path):
    from convert.preview import ContactSheet

    sheet = ContactSheet(total_frames=100, picks=4, width=40)  # slots at 0, 25, 50, 75
    frame = np.zeros((30, 60, 3), np.uint8)
    for i in range(100):
        sheet.offer(i, frame, frame, swapped=int(i >= 10 and i != 50))
    assert sheet.labels == ["frame 10", "frame 25", "frame 51", "frame 75"]
    path = sheet.save(tmp_path / "s.png")
    assert cv2.imread(str(path)).shape == (4 * 20 + 3 * 4, 2 * 40 + 4, 3)
    assert ContactSheet(10).save(tmp_path / "none.png") is None


def test_read_frames_reports_a_broken_frame_and_goes_on(monkeypatch, tmp_path):
    class FakeCapture:
        def __init__(self):
            self.i = 0

        def read(self):
            i, self.i = self.i, self.i + 1
            if i in (3, 9, 10):  # 3 is broken mid-stream; 9, 10 are past the real end
                return False, None
            return (True, np.full((4, 4, 3), i, np.uint8)) if i < 9 else (False, None)

        def release(self):
            pass

    monkeypatch.setattr("convert.frames.open_video", lambda path: FakeCapture())
    got = list(read_frames(tmp_path / "x.mp4", expected=12))
    assert [i for i, f in got] == list(range(9))
    assert [i for i, f in got if f is None] == [3]


def test_a_corrupt_frame_in_a_real_video_is_reported_and_replaced(samples, tiny_model, tmp_path, capsys):
    cap = cv2.VideoCapture(str(samples / "short_hamilton_clip.mp4"))
    writer = cv2.VideoWriter(str(tmp_path / "mj.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 360))
    for _ in range(12):
        writer.write(cap.read()[1])
    writer.release()
    data = bytearray((tmp_path / "mj.avi").read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]  # one JPEG per frame
    assert len(starts) == 12
    data[starts[5]:starts[5] + 3000] = bytes(3000)  # frame 5 loses its JPEG header
    (tmp_path / "bad.avi").write_bytes(data)
    summary = convert([tmp_path / "bad.avi"], tiny_model, tmp_path / "out.mp4", ConvertSettings(), progress=False)
    err = capsys.readouterr().err
    assert "bad.avi" in err and "frame 5 unreadable" in err
    assert summary.frames == 12 and _count_frames(tmp_path / "out.mp4") == 12


@pytest.mark.parametrize("backend", ["dlib", "mediapipe"])
def test_face_following_matches_detection_on_every_frame(samples, backend):
    from convert.faces import FaceFinder
    from curate.analysis.registry import create_analyzer
    from curate.core.media import iter_video

    analyzer = create_analyzer(backend)
    frames = [rgb for i, rgb in iter_video(samples / "short_hamilton_clip.mp4") if 100 <= i < 130]
    every = FaceFinder(analyzer, detect_every=1, smooth=0.0)
    follow = FaceFinder(analyzer, detect_every=5, smooth=0.0)
    errors = []
    for rgb in frames:
        a, b = every(rgb), follow(rgb)
        if len(a) != 1:  # the detector misses this frame; following keeps the face through such misses
            continue
        assert len(b) == 1
        errors.append(np.abs(a[0].landmarks - b[0].landmarks).mean() / np.ptp(a[0].landmarks, axis=0).max())
    assert follow.detections <= len(frames) // 5 + 1 < every.detections
    assert len(errors) > 20 and np.mean(errors) < 0.03


# ---------------------------------------------------------------- whole runs

def _clip(samples: Path, out: Path, seconds: float, audio: bool) -> Path:
    """A short piece of the sample clip, with a generated 440 Hz audio track or with none."""
    cmd = [ffmpeg_exe(), "-y", "-v", "error", "-ss", "3.4", "-i", str(samples / "short_hamilton_clip.mp4")]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-map", "0:v", "-map", "1:a", "-c:a", "aac"]
    else:
        cmd += ["-an"]
    subprocess.run([*cmd, "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-shortest", str(out)], check=True)
    return out


def _count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


@pytest.mark.parametrize("audio", [True, False])
def test_video_keeps_frames_size_fps_and_audio(samples, tiny_model, tmp_path, audio):
    clip = _clip(samples, tmp_path / "in.mp4", 1.0, audio)
    assert has_audio(clip) is audio
    summary = convert([clip], tiny_model, tmp_path / "out.mp4", ConvertSettings(), progress=False)
    out = tmp_path / "out.mp4"
    assert summary.outputs == [out] and summary.faces_swapped > 0 and not summary.errors
    src, dst = probe_video(clip), probe_video(out)
    assert (dst.width, dst.height) == (src.width, src.height)
    assert dst.fps == pytest.approx(src.fps, abs=0.01)
    assert _count_frames(out) == _count_frames(clip) == summary.frames
    assert has_audio(out) is audio
    assert not list(tmp_path.glob(".out*")), "temporary files left behind"
    assert summary.previews == [tmp_path / "out.preview.png"]  # before | after sheet of a few frames
    assert cv2.imread(str(summary.previews[0])).shape[1] == 2 * 320 + 4


def test_png_alpha_frames_change_nothing_outside_the_mask_and_resume(samples, tiny_model, tmp_path):
    clip = _clip(samples, tmp_path / "in.mp4", 0.5, audio=False)
    settings = ConvertSettings(fmt="png", alpha=True, color="rct", blend="alpha")
    first = convert([clip], tiny_model, tmp_path / "out", settings, progress=False)
    pngs = sorted((tmp_path / "out" / "in").glob("in_*.png"))
    assert len(pngs) == first.frames == _count_frames(clip) and first.faces_swapped > 0
    originals = [rgb for _, rgb in read_frames(clip, len(pngs))]
    changed_any = False
    for png, rgb in zip(pngs, originals):
        rgba = cv2.cvtColor(cv2.imread(str(png), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
        assert rgba.shape == (*rgb.shape[:2], 4)
        changed = np.any(rgba[..., :3] != rgb, axis=2)
        assert not (changed & (rgba[..., 3] == 0)).any()
        changed_any |= changed.any()
    assert changed_any
    kept = pngs[3].read_bytes()
    for p in pngs[5:9]:
        p.unlink()
    again = convert([clip], tiny_model, tmp_path / "out", settings, progress=False)
    assert again.frames == 4 and again.frames_skipped == len(pngs) - 4
    assert pngs[3].read_bytes() == kept and all(p.exists() for p in pngs)
    redo = convert([clip], tiny_model, tmp_path / "out", ConvertSettings(fmt="png", alpha=True, overwrite=True), progress=False)
    assert redo.frames == len(pngs) and redo.frames_skipped == 0


def test_only_swaps_the_chosen_person(samples, tiny_model, analyzer, load_rgb, tmp_path):
    settings = ConvertSettings(only=[str(samples / "obama.jpg")], mask_blur=4)
    summary = convert([samples / "two_people.jpg"], tiny_model, tmp_path, settings, progress=False)
    assert summary.faces_swapped == 1 and summary.faces_left == 1
    rgb = load_rgb("two_people.jpg")
    out = cv2.cvtColor(cv2.imread(str(tmp_path / "two_people.png")), cv2.COLOR_BGR2RGB)
    changed = np.any(out != rgb, axis=2)
    ys, xs = np.nonzero(changed)
    faces = sorted(analyzer.analyze(rgb), key=lambda f: f.bbox[0])  # Obama left, Biden right
    (ox, oy, ow, oh), (bx, by, bw, bh) = faces[0].bbox, faces[1].bbox
    assert len(xs) > 0.3 * ow * oh
    assert xs.min() >= ox - 0.3 * ow and xs.max() <= ox + 1.3 * ow and ys.max() <= oy + 1.4 * oh
    assert not changed[int(by):int(by + bh), int(bx):int(bx + bw)].any()


def test_faces_free_image_is_identical_and_bad_files_are_reported(samples, tiny_model, load_rgb, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    empty = load_rgb("two_people.jpg")[420:660, 0:300]  # carpet and sleeves, no face
    cv2.imwrite(str(folder / "empty.png"), cv2.cvtColor(empty, cv2.COLOR_RGB2BGR))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    shutil.copy(samples / "obama.jpg", folder / "obama.jpg")
    summary = convert([folder], tiny_model, tmp_path / "out", ConvertSettings(), progress=False)
    err = capsys.readouterr().err
    assert "broken.jpg" in err and err.count("broken.jpg") == 1
    out = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "empty.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(out, empty)
    assert (tmp_path / "out" / "obama.png").exists() and summary.faces_swapped == 1
    assert (tmp_path / "out" / "broken.jpg").read_bytes() == (folder / "broken.jpg").read_bytes()


def test_cli_reports_a_model_folder_without_checkpoints(samples, tmp_path):
    from typer.testing import CliRunner

    from faceset.cli import app

    result = CliRunner().invoke(app, ["convert", str(samples / "obama.jpg"), "--model", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "no checkpoint in this folder" in result.output


def test_output_paths_follow_the_inputs(tmp_path):
    from convert.pipeline import output_paths
    from curate.core.media import Source

    clip, photo = Source(Path("in/clip.mp4"), True), Source(Path("in/a.jpg"), False)
    assert output_paths([clip], tmp_path / "x.mp4", "mp4") == {clip.path: tmp_path / "x.mp4"}
    assert output_paths([clip], tmp_path / "o", "png") == {clip.path: tmp_path / "o" / "clip"}
    assert output_paths([photo], tmp_path / "one.png", "mp4") == {photo.path: tmp_path / "one.png"}
    both = output_paths([clip, photo], tmp_path / "o", "mp4")
    assert both == {clip.path: tmp_path / "o" / "clip.mp4", photo.path: tmp_path / "o" / "a.png"}
    assert ConvertSettings(alpha=True).fmt == "png"
    with pytest.raises(ValueError, match="blend"):
        ConvertSettings(blend="poisson")


def test_conversion_crops_match_the_training_crops(load_rgb, analyzer):
    from convert.pipeline import aligned_crop
    from curate.core.align import alignment_matrix

    rgb, marks = _frame_and_face(load_rgb, analyzer)
    matrix, crop = aligned_crop(rgb, marks, 64, 0.75)
    assert np.allclose(matrix, alignment_matrix(marks, 64, 0.75))
    exported = cv2.resize(warp_face(rgb, alignment_matrix(marks, 256, 0.75), 256), (64, 64), interpolation=cv2.INTER_AREA)
    assert np.array_equal(crop, exported)  # extract at 256 px, export/train resize with INTER_AREA


@pytest.mark.parametrize("arch", ["original", "liae"])
def test_swapper_loads_either_architecture_in_both_directions(export_dirs, tmp_path, arch):
    from convert.swapper import Swapper
    from train.trainer import TrainSettings, train

    a, b = export_dirs
    train(TrainSettings(str(a), str(b), str(tmp_path), arch=arch, enc_ch=8, ae_dims=16, dec_ch=8, batch=2, workers=0,
                        iters=2, save_every=2, preview_every=2), progress=False)
    crops = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    outs = {}
    for direction in ("a2b", "b2a"):
        swapper = Swapper(tmp_path, direction, "cpu")
        assert (swapper.size, swapper.coverage, swapper.backend, swapper.iteration) == (64, 0.75, "mediapipe", 2)
        rgb, mask = swapper(crops)
        assert rgb.shape == (3, 64, 64, 3) and mask.shape == (3, 64, 64)
        assert 0 <= rgb.min() and rgb.max() <= 1
        outs[direction] = rgb
    assert not np.allclose(outs["a2b"], outs["b2a"])  # the two directions use different decoders / inter layers
    with pytest.raises(ValueError, match="direction"):
        Swapper(tmp_path, "a2a")


def test_a_missing_or_empty_model_folder_is_named_as_such(tmp_path, samples):
    import subprocess
    import sys

    (tmp_path / "empty").mkdir()
    for folder, says in ((tmp_path / "nomodel", "no such model folder"), (tmp_path / "empty", "no checkpoint in this folder")):
        result = subprocess.run([sys.executable, "-m", "faceset", "convert", str(samples / "obama.jpg"), "--model", str(folder),
                                 "--out", str(tmp_path / "x.png")], capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.strip() == f"faceset: error: {folder}: {says}" + (
            " (train a model into it first)" if folder.name == "empty" else "")


# ---------------------------------------------------------------- hands in front of the face

def test_mask_specs_combine_and_hands_are_cut_out():
    from convert.blend import parse_mask

    assert parse_mask("both") == ("hull", "model")
    assert parse_mask("hull+hands") == parse_mask("hull, hands") == ("hull", "hands")
    assert parse_mask("hands") == ("hull", "hands")
    for bad in ("xseg", "hull,fingers", ""):
        with pytest.raises(ValueError):
            parse_mask(bad)
    marks = np.array([[x, y] for x in np.linspace(10, 54, 9) for y in np.linspace(10, 54, 8)])[:68]
    hand = np.zeros((64, 64), np.uint8)
    hand[30:50, 20:40] = 255
    plain, cut = crop_mask("hull", marks, 64, occluders=hand), crop_mask("hull,hands", marks, 64, occluders=hand)
    assert plain[35:45, 25:35].min() == 1 and cut[30:50, 20:40].max() == 0 and cut[15:25, 15:25].min() == 1
    assert np.array_equal(crop_mask("hull,hands", marks, 64), plain)  # no hand found: the plain mask


def _clip_frame(samples: Path, index: int) -> np.ndarray:
    from curate.core.media import iter_video

    return next(rgb for i, rgb in iter_video(samples / "short_hamilton_clip.mp4", start=index) if i == index)


def test_hands_are_found_in_front_of_the_face_and_not_where_there_are_none(samples, load_rgb):
    from curate.analysis.hands import HandFinder, hand_mask, hands_near

    finder = HandFinder()
    rgb = _clip_frame(samples, 183)  # one hand holds the microphone at his mouth, the other is open beside him
    hands = finder.find(rgb)
    assert len(hands) == 2 and all(h.points.shape == (21, 3) for h in hands)
    face_box = (170, 20, 90, 110)  # his head in this frame (x, y, w, h)
    near = hands_near(hands, face_box)
    assert len(near) == 1
    x0, y0, x1, y1 = near[0].box
    assert 180 < (x0 + x1) / 2 < 260 and y0 < 160  # the microphone hand, under his mouth
    mask = hand_mask(rgb.shape, near)
    assert 1500 < (mask > 0).sum() < 12000
    crossed = finder.find(load_rgb("obama.jpg"))  # his hand on his crossed arms, far below the face
    assert all(h.box[1] > 700 for h in crossed)
    assert not hands_near(crossed, (350, 80, 270, 340))


def test_hands_mask_keeps_the_hand_over_the_face_after_conversion(samples, tiny_model, tmp_path):
    from curate.analysis.hands import HandFinder, hand_mask

    rgb = _clip_frame(samples, 138)  # his fingers cover his chin (the landmark hull paints over them)
    src = tmp_path / "in" / "frame138.png"
    src.parent.mkdir()
    cv2.imwrite(str(src), rgb[:, :, ::-1])
    outs = {}
    for spec in ("hull", "hull,hands"):
        convert([src], tiny_model, tmp_path / spec.replace(",", "_"), ConvertSettings(mask=spec), progress=False)
        outs[spec] = cv2.imread(str(next((tmp_path / spec.replace(",", "_")).rglob("*.png"))))[:, :, ::-1]
    inner = cv2.erode(hand_mask(rgb.shape, HandFinder().find(rgb)), np.ones((5, 5), np.uint8)) > 0
    over_face = inner & np.any(outs["hull"] != rgb, axis=2)  # hand pixels the plain hull mask paints over
    assert over_face.sum() >= 60
    assert not np.any(outs["hull,hands"][over_face] != rgb[over_face])  # kept bit-identical with hands cut out
    assert np.any(outs["hull,hands"] != rgb)  # the face itself is still swapped
