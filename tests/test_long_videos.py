"""Long videos: the real SAMM Long Videos / CAS(ME)^2 sheets, and synthetic ones end to end."""

import csv
import json
import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_builders.au import parse_aus
from data_builders.synthetic_long import synthesize_long
from vqa.cli import main
from vqa.lvqa import texts
from vqa.question_types import question_type

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMM_SHEET = SHARED / "annotations/samm_long_videos/SAMM_LongVideos_V2_Release.csv"
CAS_SHEET = SHARED / "annotations/casme_sq/CAS(ME)^2code_final(Updated).csv"
needs_shared = pytest.mark.skipif(not SAMM_SHEET.is_file(), reason="../shared is absent")


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def convert(capsys, database, labels, frames, out, *extra):
    argv = ["convert", database, "--labels", str(labels), "--frames", str(frames)]
    code = main([*argv, "--out", str(out), *extra])
    return code, capsys.readouterr()


def lay_out(root: Path, folders: dict[str, int], name) -> None:
    """Frame folders with their first frame and one past the last annotated offset."""
    for folder, last in folders.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for n in (1, last + 1):
            (root / folder / name(folder, n)).write_bytes(b"")


def counts_by_video(videos: list[dict]) -> dict[str, Counter]:
    return {v["video"]: Counter(e["type"] for e in v["events"]) for v in videos}


@needs_shared
def test_real_samm_long_videos_sheet(tmp_path, capsys):
    with SAMM_SHEET.open(newline="") as f:
        rows = list(csv.reader(f))
    header = next(i for i, r in enumerate(rows) if r[:2] == ["Subject", "Filename"])
    sheet = [r for r in rows[header + 1 :] if any(r)]
    expected, last = {}, Counter()
    for r in sheet:
        video = r[1].rsplit("_", 1)[0]
        expected.setdefault(video, Counter())["micro" if r[7].startswith("Micro") else "macro"] += 1
        last[video] = max(last[video], int(r[5]))
    frames = tmp_path / "SAMM_longvideos"
    lay_out(frames, last, lambda folder, n: f"{folder}_{n:04d}.jpg")
    code, out = convert(capsys, "samm_lv", SAMM_SHEET, frames, tmp_path / "out")
    assert code == 0, out.err
    assert f"{len(sheet)} sheet rows read, {len(sheet)} events kept" in out.out
    assert "0 dropped" in out.out and "frame folder missing" not in out.out
    videos = read_jsonl(tmp_path / "out/videos.jsonl")
    assert counts_by_video(videos) == expected
    assert all(v["n_frames"] == 2 and v["fps"] == 200 for v in videos)
    assert all(
        [e["onset"] for e in v["events"]] == sorted(e["onset"] for e in v["events"]) for v in videos
    )
    assert len(read_jsonl(tmp_path / "out/intervals.jsonl")) == len(sheet)
    apex_unknown = sum(e["apex"] is None for v in videos for e in v["events"])
    assert apex_unknown == sum(r[4] == "-1" for r in sheet)


@needs_shared
def test_real_casme_sq_sheet(tmp_path, capsys):
    with CAS_SHEET.open(newline="") as f:
        sheet = [r for r in csv.reader(f) if any(r)]
    expected, last = {}, Counter()
    for r in sheet:
        video = r[10].split("/")[1]
        expected.setdefault(video, Counter())[r[7].split("-")[0]] += 1
        last[r[10]] = max(last[r[10]], int(r[2]), int(r[4]))
    frames = tmp_path / "rawpic"
    lay_out(frames, last, lambda folder, n: f"img{n}.jpg")
    code, out = convert(capsys, "casme_sq", CAS_SHEET, frames, tmp_path / "out")
    assert code == 0, out.err
    assert f"{len(sheet)} sheet rows read, {len(sheet)} events kept" in out.out
    unknown = sum(r[4] == "0" for r in sheet)
    assert f"warning (offset unknown): {unknown}" in out.out
    videos = read_jsonl(tmp_path / "out/videos.jsonl")
    assert counts_by_video(videos) == expected
    assert len(read_jsonl(tmp_path / "out/intervals.jsonl")) == len(sheet) - unknown
    # a video with an event of unknown offset is not asked to list that type's intervals
    rows = read_jsonl(tmp_path / "out/lvqa.jsonl")
    unlisted = {(v["video"], e["type"]) for v in videos for e in v["events"] if e["offset"] is None}
    spots = {"lvqa_spot_micro": "micro", "lvqa_spot_macro": "macro"}
    asked = {(r["video"], spots.get(question_type(r["question"]))) for r in rows}
    assert unlisted and not unlisted & asked
    assert sum(kind is not None for _, kind in asked) == 2 * len(videos) - len(unlisted)


@needs_shared
def test_real_casme3_part_a_sheet_is_micro_only(tmp_path, capsys):
    sheet = SHARED / "annotations/casme_cube/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    (tmp_path / "part_A").mkdir()
    code, out = convert(
        capsys, "casme3_lv", sheet, tmp_path / "part_A", tmp_path / "out", "--skip-bad-rows"
    )
    assert code == 0, out.err
    assert "0 macro" in out.out and "lists micro-expressions only" in out.out
    assert "dropped (bad frame numbers): 1" in out.out
    # without the macro-expressions, only the micro count and intervals are known
    asked = {question_type(r["question"]) for r in read_jsonl(tmp_path / "out/lvqa.jsonl")}
    assert asked == {"lvqa_count_micro", "lvqa_spot_micro"}, asked
    assert read_jsonl(tmp_path / "out/videos.jsonl")[0]["annotated"] == ["micro"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    samm = synthesize_long("samm_lv", root, subjects=2, frames=720, size=64, seed=3)
    cas = synthesize_long("casme_sq", root, subjects=2, videos_per_subject=2, frames=200, seed=3)
    return root, {"samm_lv": samm, "casme_sq": cas}


def test_synthetic_events_are_micro_and_macro_apart_in_time(synthetic):
    _, dbs = synthetic
    for db in dbs.values():
        fps = {"samm_lv": 200, "casme_sq": 30}[db.name]
        for video in db.videos:
            kinds = {e.type for e in video.events}
            assert kinds == {"micro", "macro"}
            for e in video.events:
                seconds = (e.offset - e.onset) / fps
                assert seconds <= 0.5 if e.type == "micro" else 0.5 < seconds <= 4
            ends = [x for e in video.events for x in (e.onset, e.offset)]
            assert ends == sorted(ends) and len(set(ends)) == len(ends)


def test_synthetic_faces_move_at_the_events(synthetic):
    _, dbs = synthetic
    apex, neutral = [], []
    for video in dbs["casme_sq"].videos[:2]:

        def frame(n, video=video):  # blurred and mean-free: noise and lighting are not motion
            image = cv2.imread(str(video.folder / f"img{n}.jpg"), cv2.IMREAD_GRAYSCALE)
            image = cv2.GaussianBlur(image, (5, 5), 0).astype(float)
            return image - image.mean()

        for e in video.events:
            apex.append(np.percentile(np.abs(frame(e.apex) - frame(e.onset)), 99))
            neutral.append(np.percentile(np.abs(frame(e.offset) - frame(e.onset)), 99))
    assert np.mean(apex) > 2 * np.mean(neutral)


def test_synthetic_long_videos_convert_and_score_perfectly(synthetic, tmp_path, capsys):
    root, dbs = synthetic
    answers = []
    for name, db in dbs.items():
        code, out = convert(capsys, name, db.labels, db.frames, tmp_path / name)
        assert code == 0, out.err
        events = sum(len(v.events) for v in db.videos)
        assert f"{events} sheet rows read, {events} events kept" in out.out
        videos = read_jsonl(tmp_path / name / "videos.jsonl")
        assert [v["video"] for v in videos] == [v.video for v in db.videos]
        for got, want in zip(videos, db.videos, strict=True):
            assert got["n_frames"] == want.n_frames
            assert [
                (e["onset"], e["apex"], e["offset"], e["type"], e["aus"]) for e in got["events"]
            ] == [
                (
                    e.onset,
                    e.apex if e.apex_written else None,
                    e.offset if e.offset_written else None,
                    e.type,
                    [au.name for au in parse_aus(e.aus)[0]],
                )
                for e in want.events
            ]
        answers.append(tmp_path / name / "lvqa.jsonl")
    gt = tmp_path / "all.jsonl"
    gt.write_text("".join(p.read_text() for p in answers))
    assert main(["score", "--pred", str(gt), "--gt", str(gt), "--out", str(tmp_path / "s")]) == 0
    metrics = json.loads((tmp_path / "s/metrics.json").read_text())
    for block in [metrics["overall"], *metrics["by_dataset"].values()]:
        lv = block["lvqa"]
        assert all(lv["count"][k]["mae"] == 0 for k in ("total", "micro", "macro"))
        assert lv["au_inventory"]["f1"] == 1 and lv["event_type"]["uf1"] == 1
        assert block["spotting"]["f1"] == 1 and block["spotting"]["fn"] == 0
    assert "## ME-LVQA (long videos)" in (tmp_path / "s/report.md").read_text()
    assert list(metrics["overall"]["spotting"])[:6] == "tp fp fn precision recall f1".split()
    intervals = tmp_path / "intervals.jsonl"
    intervals.write_text("".join((tmp_path / n / "intervals.jsonl").read_text() for n in dbs))
    assert main(["score-spotting", "--pred", str(intervals), "--gt", str(intervals)]) == 0
    n = len(intervals.read_text().splitlines())
    assert f"| Overall | {n} | 0 | 0 | 1.0000 | 1.0000 | 1.0000 |" in capsys.readouterr().out


def test_lvqa_rows_follow_the_megc2026_test_files(synthetic, tmp_path, capsys):
    _, dbs = synthetic
    db = dbs["casme_sq"]
    for flag in ([], ["--all-events"]):
        convert(capsys, "casme_sq", db.labels, db.frames, tmp_path / "a", *flag)
        rows = read_jsonl(tmp_path / "a/lvqa.jsonl")
        first = [r for r in rows if r["video"] == db.videos[0].video]
        ks = [int(m) for r in first for m in re.findall(r"the (\d+)-th", r["question"])]
        n = len(db.videos[0].events)
        assert ks == list(range(1, n + 1)) if flag else len(set(ks)) == 2
        assert [r["id"] for r in first] == [
            f"casme_sq_{r['video']}_{k}" for k, r in enumerate(first, 1)
        ]
    for folder in ("b", "c"):  # deterministic given --seed
        convert(capsys, "casme_sq", db.labels, db.frames, tmp_path / folder, "--seed", "7")
    assert read_jsonl(tmp_path / "b/lvqa.jsonl") == read_jsonl(tmp_path / "c/lvqa.jsonl")
    q = texts()["questions"]
    phrasings = {q["count_total"], q["count_micro"], q["count_macro"], q["au_inventory"]}
    test_files = sorted((SHARED / "megc2026").glob("me_lvqa_*_test_to_answer.jsonl"))
    for path in test_files:
        for row in read_jsonl(path):
            k = re.search(r"the (\d+)-th", row["question"])
            mine = q["event_type"].format(k=k.group(1)) if k else row["question"]
            assert row["question"] == mine and (k or mine in phrasings)
            assert question_type(row["question"]).startswith("lvqa_")


def test_bad_sheet_cells_are_one_line_and_exit_2(tmp_path, capsys):
    good = "1,anger1_1,557,572,608,4+10,negative,macro-expression,anger,51,s15/15_0401x\n"
    for bad, message in [
        ("1,anger1_2,abc,572,608,4,negative,macro-expression,anger,51,s15/15_0401x", "onset"),
        ("1,anger1_2,700,710,690,4,negative,macro-expression,anger,51,s15/15_0401x", "after"),
        ("1,anger1_2,557,572,608,4,negative,meso-expression,anger,51,s15/15_0401x", "type"),
        ("1,anger1_2,557,572,608,4,negative,macro-expression,anger,51,15_0401x", "folder"),
    ]:
        sheet = tmp_path / "sheet.csv"
        sheet.write_text(good + bad + "\n")
        code, out = convert(capsys, "casme_sq", sheet, tmp_path, tmp_path / "out")
        assert code == 2 and len(out.err.strip().splitlines()) == 1
        assert "sheet.csv:2:" in out.err and message in out.err
        assert not (tmp_path / "out").exists()


def test_a_sheet_missing_a_column_names_the_columns(tmp_path, capsys):
    sheet = tmp_path / "sheet.csv"  # no type column: every later cell would shift left
    sheet.write_text("1,anger1_1,557,572,608,4+10,negative,anger,51,s15/15_0401x\n")
    code, out = convert(capsys, "casme_sq", sheet, tmp_path, tmp_path / "out")
    assert code == 2 and out.err.strip().splitlines() == [
        f"error: {sheet}: the sheet has 10 columns, not the 11 of its database: subject_number, "
        "event, onset, apex, offset, aus, coarse, type, fine, duration, folder (add the missing "
        "column at its place, as the database's own sheet has it)"
    ]
    assert not (tmp_path / "out").exists()
