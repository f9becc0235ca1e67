import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_builders import facecrop, inputs
from data_builders import flow as flowlib
from data_builders.face import FaceShape
from data_builders.frames import build_in_parallel
from data_builders.sampling import estimate_apex
from data_builders.synthetic import render_clip
from vqa.cli import main
from vqa.errors import UserError
from vqa.jsonl import atomic_folder, read_jsonl

ONSET, APEX, OFFSET = 100, 109, 123


def numbered_frame(number: int, size: int = 32) -> np.ndarray:
    """A grey frame spelling its own number: left half the low byte, right half the high byte."""
    frame = np.zeros((size, size, 3), np.uint8)
    frame[:, : size // 2], frame[:, size // 2 :] = number % 256, number // 256
    return frame


def read_number(path: Path) -> int:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(float)
    half = image.shape[1] // 2
    low, high = (
        int(np.round(np.median(part))) for part in (image[:, : half - 2], image[:, half + 2 :])
    )
    return high * 256 + low


@pytest.fixture
def numbered_clip(tmp_path):
    """A clips.jsonl + qa.jsonl pair for one CASME II-style clip of numbered PNG frames."""
    folder = tmp_path / "frames" / "sub01" / "EP01_01"
    folder.mkdir(parents=True)
    for n in range(ONSET - 5, OFFSET + 6):  # the folder holds more than the clip
        cv2.imwrite(str(folder / f"img{n}.png"), numbered_frame(n))
    clip = {
        "dataset": "casme2",
        "subject": "sub01",
        "filename": "EP01_01",
        "image_id": "sub01_EP01_01",
        "frames_root": str(tmp_path / "frames"),
        "frames_dir": "sub01/EP01_01",
        "onset": ONSET,
        "apex": APEX,
        "offset": OFFSET,
        "fps": 200,
    }
    qa = {
        "id": "casme2_sub01_EP01_01_1",
        "dataset": "casme2",
        "image_id": "sub01_EP01_01",
        "subject": "sub01",
        "filename": "EP01_01",
        "question": "What is the coarse expression class?",
        "answer": "negative",
    }
    (tmp_path / "clips.jsonl").write_text(json.dumps(clip) + "\n")
    (tmp_path / "qa.jsonl").write_text(json.dumps(qa) + "\n")
    return tmp_path


def build(base: Path, mode: str, *extra: str) -> int:
    return main(
        [
            "build-inputs",
            "--clips",
            str(base / "clips.jsonl"),
            "--qa",
            str(base / "qa.jsonl"),
            "--mode",
            mode,
            "--out",
            str(base / "out"),
            "--size",
            "32",
            "--face-crop",
            "none",
            "--workers",
            "1",
            *extra,
        ]
    )


def test_oao_is_exactly_onset_apex_offset(numbered_clip):
    assert build(numbered_clip, "oao") == 0
    row = read_jsonl(numbered_clip / "out" / "inputs.jsonl")[0]
    assert [read_number(numbered_clip / "out" / p) for p in row["images"]] == [ONSET, APEX, OFFSET]
    assert row["mode"] == "oao" and row["apex_estimated"] is False and "frames" not in row


def test_video_is_n_evenly_spaced_frames_in_order(numbered_clip):
    assert build(numbered_clip, "video", "--num-frames", "6") == 0
    row = read_jsonl(numbered_clip / "out" / "inputs.jsonl")[0]
    numbers = [read_number(numbered_clip / "out" / p) for p in row["frames"]]
    expected = [round(ONSET + k * (OFFSET - ONSET) / 5) for k in range(6)]
    assert numbers == expected


def test_video_rows_give_the_model_the_true_rate_of_their_frames(numbered_clip, tiny_model_dir):
    from vqa.model import encode, load_processor
    from vqa.prompts import build_messages

    assert build(numbered_clip, "video", "--num-frames", "6") == 0
    row = read_jsonl(numbered_clip / "out" / "inputs.jsonl")[0]
    spacing = (OFFSET - ONSET) / 5 / 200  # seconds between the sampled frames of a 200 fps clip
    assert row["sample_fps"] == pytest.approx(1 / spacing, rel=1e-4)
    processor = load_processor(tiny_model_dir)
    messages = [build_messages(row, numbered_clip / "out")]
    batch = encode(processor, messages, add_generation_prompt=True)
    patch = processor.video_processor.temporal_patch_size  # frames per temporal grid step
    assert batch["second_per_grid_ts"].tolist() == pytest.approx([patch * spacing], rel=1e-4)


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The frame files this process decodes from now on (every decode goes through imread)."""
    seen: list[str] = []

    def counting_imread(path, *args):
        seen.append(path)
        return imread(path, *args)

    imread = cv2.imread
    monkeypatch.setattr(cv2, "imread", counting_imread)
    return seen


def test_second_build_is_a_cache_hit(numbered_clip, capsys, decoded):
    assert build(numbered_clip, "oao+flow") == 0
    assert decoded, "the first build decodes frames"
    decoded.clear()
    first = (numbered_clip / "out" / "inputs.jsonl").read_bytes()
    assert build(numbered_clip, "oao+flow") == 0
    assert decoded == []
    assert (numbered_clip / "out" / "inputs.jsonl").read_bytes() == first
    assert "0 built, 1 from cache" in capsys.readouterr().out


def test_changed_parameters_rebuild(numbered_clip, decoded):
    assert build(numbered_clip, "oao") == 0
    decoded.clear()
    assert build(numbered_clip, "oao", "--size", "16") == 0
    assert decoded


def test_interrupted_build_leaves_no_half_clip(numbered_clip, monkeypatch):
    def crash(*args):
        raise RuntimeError("power cut")

    monkeypatch.setattr(inputs, "_flow_image", crash)
    with pytest.raises(RuntimeError):
        build(numbered_clip, "oao+flow")
    clips = numbered_clip / "out" / "clips"
    assert not list(clips.iterdir()) and not (numbered_clip / "out" / "inputs.jsonl").exists()


def textured(size: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, (size, size), dtype=np.uint8), (5, 5), 1.5)


def moved_patch(
    image: np.ndarray, dx: int, dy: int, global_shift: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """``image`` with the upper-left block moved by (dx, dy), everything shifted by global_shift."""
    out = image.copy()
    out[10 + dy : 40 + dy, 10 + dx : 40 + dx] = image[10:40, 10:40]
    return np.roll(out, global_shift, axis=(0, 1))


@pytest.mark.parametrize("method", ["farneback", "dis"])
@pytest.mark.parametrize("direction,dx,dy", [("right", 3, 0), ("up", 0, -3)])
def test_motion_renders_in_the_legends_colour(method, direction, dx, dy):
    first = textured()
    motion = flowlib.compute_flow(first, moved_patch(first, dx, dy), method)
    picture = flowlib.render(flowlib.compensate(motion))
    assert (
        flowlib.colour_name(picture[20:30, 20:30].reshape(-1, 3).mean(axis=0))
        == flowlib.legend()[direction]
    )
    assert f"{flowlib.legend()[direction]} = {direction}" in flowlib.legend_sentence()


@pytest.mark.parametrize("reference", flowlib.REFERENCES)
def test_global_shift_is_removed(reference):
    first = textured()
    second = moved_patch(first, 3, 0, global_shift=(0, 2))
    flow = flowlib.compensate(flowlib.compute_flow(first, second, "farneback"), reference)
    still = np.abs(flow[60:85, 50:85]).mean()
    assert still < 0.3
    assert flow[20:30, 20:30, 0].mean() > 2.0  # the patch's own motion is kept


def test_estimated_apex_is_near_the_true_one():
    rng = np.random.default_rng(0)
    for apex_index in (6, 9, 12):
        frames = render_clip(FaceShape.sample(rng), "6+12", 24, apex_index, 128, rng)
        assert abs(estimate_apex(range(24), frames.__getitem__) - apex_index) <= 2


def test_test_rows_use_the_whole_folder_and_estimate_the_apex(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "videos" / "SAMM-1"
    folder.mkdir(parents=True)
    for n, frame in enumerate(render_clip(FaceShape.sample(rng), "1+2+5", 16, 7, 64, rng), 1):
        cv2.imwrite(str(folder / f"{n:05d}.jpg"), frame)
    qa = tmp_path / "test.jsonl"
    qa.write_text(
        '{"video_id": "samm_test_SAMM-1_1", "video": "SAMM-1", '
        '"question": "What is the coarse expression class?", "answer": ""}\n'
    )
    assert (
        main(
            [
                "build-inputs",
                "--qa",
                str(qa),
                "--frames-root",
                str(tmp_path / "videos"),
                "--mode",
                "oao",
                "--out",
                str(tmp_path / "out"),
                "--workers",
                "1",
            ]
        )
        == 0
    )
    row = read_jsonl(tmp_path / "out" / "inputs.jsonl")[0]
    assert row["apex_estimated"] is True and row["images"][0].endswith("onset_1.jpg")
    assert abs(int(Path(row["images"][1]).stem.split("_")[1]) - 8) <= 2


@pytest.mark.parametrize("mode", inputs.MODES)
def test_inputs_load_in_the_tiny_processor(numbered_clip, mode, tiny_model_dir):
    from vqa.model import encode, load_processor
    from vqa.prompts import build_messages

    assert build(numbered_clip, mode, "--num-frames", "4") == 0
    out = numbered_clip / "out"
    row = read_jsonl(out / "inputs.jsonl")[0]
    batch = encode(
        load_processor(tiny_model_dir),
        [build_messages(row, out, "guided", with_answer=True)],
        add_generation_prompt=False,
    )
    assert ("pixel_values" in batch) == ("images" in row)
    assert ("pixel_values_videos" in batch) == ("frames" in row)


def expect_error(capsys, code: int, *fragments: str) -> None:
    assert code == 2
    stderr = capsys.readouterr().err.replace("\r", "\n")  # progress bars share stderr
    (err,) = [line for line in stderr.splitlines() if line.startswith("error: ")]
    for fragment in fragments:
        assert fragment in err


def test_missing_frame_folder(numbered_clip, capsys):
    clip = json.loads((numbered_clip / "clips.jsonl").read_text())
    clip["frames_dir"] = "sub01/nowhere"
    (numbered_clip / "clips.jsonl").write_text(json.dumps(clip) + "\n")
    expect_error(
        capsys, build(numbered_clip, "oao"), "clips.jsonl:1", "sub01/nowhere", "does not exist"
    )
    assert not (numbered_clip / "out").exists()


def test_missing_frame_names_the_nearest(numbered_clip, capsys):
    (numbered_clip / "frames" / "sub01" / "EP01_01" / f"img{APEX}.png").unlink()
    expect_error(
        capsys,
        build(numbered_clip, "oao"),
        f"frame {APEX} is missing",
        f"nearest existing frame is {APEX - 1}",
    )


@pytest.mark.parametrize(
    "number, content",
    [(ONSET, b"not an image"), (ONSET - 5, b"")],  # an empty first frame: its size is read first
)
def test_frame_that_decodes_to_nothing(numbered_clip, capsys, number, content):
    (numbered_clip / "frames" / "sub01" / "EP01_01" / f"img{number}.png").write_bytes(content)
    expect_error(capsys, build(numbered_clip, "oao"), f"img{number}.png", "decodes to nothing")
    assert not (numbered_clip / "out" / "inputs.jsonl").exists()


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("onset", "abc", "onset 'abc' is not a frame number"),
        ("apex", 109.5, "apex 109.5 is not a frame number"),
        ("fps", 0, "fps 0 is not a frame rate"),
        ("fps", "fast", "fps 'fast' is not a frame rate"),
        ("image_id", 7, "image_id 7 is not text"),
        ("dataset", None, "row has no dataset"),
    ],
)
def test_clip_rows_of_the_wrong_type(numbered_clip, capsys, key, value, message):
    clip = json.loads((numbered_clip / "clips.jsonl").read_text())
    clip[key] = value
    if value is None:
        del clip[key]
    (numbered_clip / "clips.jsonl").write_text(json.dumps(clip) + "\n")
    expect_error(capsys, build(numbered_clip, "video"), f"clips.jsonl:1: {message} (")
    assert not (numbered_clip / "out").exists()


TEST_ROW = {"video_id": "samm_test_SAMM-1_1", "question": "What is the action unit?", "answer": ""}


@pytest.mark.parametrize(
    "row, message",
    [
        ({**TEST_ROW, "video": 7}, "video 7 is not a folder name"),
        (TEST_ROW, "test row has no video"),
        ({"question": "What is the action unit?"}, "row has no video (test rows) nor dataset"),
        ({**TEST_ROW, "video": "SAMM-1"}, "clip SAMM-1: no frame images in"),
    ],
)
def test_bad_test_rows(tmp_path, capsys, row, message):
    (tmp_path / "videos" / "SAMM-1").mkdir(parents=True)  # a video folder without frames
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(json.dumps(row) + "\n")
    argv = ["build-inputs", "--qa", str(test_file), "--frames-root", str(tmp_path / "videos")]
    code = main([*argv, "--mode", "oao", "--out", str(tmp_path / "out")])
    expect_error(capsys, code, f"{test_file}:1: {message}", "(")  # every message has its fix
    assert not (tmp_path / "out").exists()


def _write_or_fail(folder: Path, fail: bool) -> None:
    """A build_in_parallel task: fails while the other one is writing its folder."""
    if fail:
        time.sleep(0.3)
        raise UserError("damaged frame")
    with atomic_folder(folder) as tmp:
        time.sleep(1.5)
        (tmp / "record.json").write_text("{}")


def test_a_failing_worker_leaves_no_temporary_folder(tmp_path):
    tasks = [(tmp_path / "fails", True), (tmp_path / "finishes", False)]
    with pytest.raises(UserError):
        list(build_in_parallel(_write_or_fail, tasks, 2, "test", "clip"))
    assert [p.name for p in tmp_path.iterdir()] == ["finishes"]  # built, cached by design


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--mode", "stereo"], "unknown mode 'stereo'"),
        (["--mode", "video", "--num-frames", "5"], "--num-frames 5"),
        (["--mode", "video", "--num-frames", "0"], "--num-frames 0"),
        (["--mode", "oao", "--size", "0"], "--size 0 is not allowed"),
        (["--mode", "flow", "--flow-size", "-5"], "--flow-size -5 is not allowed"),
        (["--mode", "oao", "--workers", "0"], "--workers 0 is not allowed"),
        (["--mode", "long", "--size", "-5"], "--size -5 is not allowed"),
    ],
)
def test_bad_options(numbered_clip, capsys, args, fragment):
    code = main(
        [
            "build-inputs",
            "--clips",
            str(numbered_clip / "clips.jsonl"),
            "--qa",
            str(numbered_clip / "qa.jsonl"),
            "--out",
            str(numbered_clip / "out"),
            *args,
        ]
    )
    expect_error(capsys, code, fragment)
    assert not (numbered_clip / "out").exists()


def test_tvl1_without_contrib(numbered_clip, capsys, monkeypatch):
    monkeypatch.setattr(flowlib, "has_tvl1", lambda: False)
    expect_error(capsys, build(numbered_clip, "flow", "--flow", "tvl1"), "opencv-contrib")


def _test_row(video_id: str | None, video: str, k: int = 1) -> dict:
    row = {"video_id": video_id, "video": video, "question": f"Question {k}?", "answer": ""}
    return {key: value for key, value in row.items() if value is not None}


@pytest.mark.parametrize("mode", ["oao", "long"])
@pytest.mark.parametrize(
    "bad,message",
    [
        (_test_row("samm_test_SAMM-1_1", "SAMM-1", 2), "video_id samm_test_SAMM-1_1 is already at"),
        (
            _test_row("casme3_test_SAMM-1_2", "SAMM-1"),
            "names database casme3, the file's rows samm",
        ),
        (_test_row("samm_test_SAMM-2_2", "SAMM-1"), "names video 'SAMM-2', the row's video is"),
        (_test_row(None, "SAMM-1"), "test row has no video_id"),
    ],
)
def test_bad_challenge_test_rows(tmp_path, capsys, mode, bad, message):
    test_file = tmp_path / "test.jsonl"
    rows = [_test_row("samm_test_SAMM-1_1", "SAMM-1"), bad]
    test_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code = main(
        ["build-inputs", "--qa", str(test_file), "--mode", mode, "--out", str(tmp_path / "in")]
    )
    expect_error(capsys, code, f"{test_file}:2:", message)
    assert not (tmp_path / "in").exists()


class FoundFaces:
    """A stand-in for OpenCV's cascade: finds the given boxes on any frame (as OpenCV 4 does,
    an int32 array, or an empty tuple)."""

    def __init__(self, faces: list[tuple[int, int, int, int]]):
        self.faces = np.array(faces, np.int32) if faces else ()

    def detectMultiScale(self, grey, **kw):  # noqa: N802 (OpenCV's name)
        return self.faces


def test_face_crop_auto_says_when_it_left_clips_uncropped(numbered_clip, capsys, monkeypatch):
    """OpenCV 5 wheels ship no face detector: without this line every clip of a real database
    would be shown whole, silently."""
    auto = ("--face-crop", "auto")
    monkeypatch.setattr(facecrop, "detector", lambda: None)
    assert build(numbered_clip, "oao", *auto) == 0
    assert "warning: --face-crop auto cropped no clip: this OpenCV has no face detector" in (
        capsys.readouterr().out
    )
    monkeypatch.setattr(facecrop, "detector", lambda: FoundFaces([]))
    assert build(numbered_clip, "oao", *auto, "--size", "24") == 0
    assert "warning: --face-crop auto found no face in 1 clip(s) of 1;" in capsys.readouterr().out
    monkeypatch.setattr(facecrop, "detector", lambda: FoundFaces([(4, 4, 20, 20)]))
    assert build(numbered_clip, "oao", *auto, "--size", "28") == 0
    assert "warning" not in capsys.readouterr().out  # the box is written in the clip's record
    picture = (
        numbered_clip / "out" / read_jsonl(numbered_clip / "out" / "inputs.jsonl")[0]["images"][0]
    )
    assert json.loads((picture.parent / "record.json").read_text())["face_box"] == [2, 2, 24, 24]
    assert build(numbered_clip, "oao", "--size", "26") == 0  # --face-crop none: nothing to say
    assert "warning" not in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["oao", "long"])
def test_one_video_named_by_test_files_of_two_databases_is_refused(tmp_path, capsys, mode):
    """Both would be read from FRAMES_ROOT/SAMM-1, at the frame rates of two databases."""
    samm, casme3 = tmp_path / "samm.jsonl", tmp_path / "casme3.jsonl"
    samm.write_text(json.dumps(_test_row("samm_test_SAMM-1_1", "SAMM-1")) + "\n")
    casme3.write_text(json.dumps(_test_row("casme3_test_SAMM-1_1", "SAMM-1")) + "\n")
    argv = ["build-inputs", "--qa", str(samm), str(casme3), "--mode", mode]
    code = main([*argv, "--frames-root", str(tmp_path), "--out", str(tmp_path / "in")])
    expect_error(capsys, code, f"{casme3}:1: video SAMM-1 is also a samm test video in {samm}")
    assert not (tmp_path / "in").exists()
