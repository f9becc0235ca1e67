"""me-vqa infer on the tiny model: answers, batching, SIGKILL and resume, adapters, submissions."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import CLIP_QUESTIONS, write_image

from vqa import cli
from vqa.errors import UserError
from vqa.infer import main
from vqa.jsonl import read_jsonl, write_jsonl
from vqa.parse import parse_combined
from vqa.prompts import official
from vqa.taxonomy import FINE_TO_COARSE

Q = official()["questions"]
SHARED_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "megc2025" / "test"


def clip_row(video: str, k: int, question: str, folder: str, mode: str) -> dict:
    """A test-schema row plus what build-inputs adds for ``mode`` (oao images or video frames)."""
    dataset = "samm" if video.startswith("SAMM") else "casme3"
    row = {
        "video_id": f"{dataset}_test_{video}_{k}",
        "video": video,
        "question": question,
        "answer": "",
    }
    frames = [f"{folder}/{n}.png" for n in range(4)]
    if mode == "oao":
        return {**row, "mode": "oao", "images": frames[:3], "apex_estimated": True}
    return {**row, "mode": "video", "frames": frames, "apex_estimated": True}


def write_inputs(folder: Path, clips: dict[str, list[str]], mode_of=lambda i: "oao") -> Path:
    """inputs.jsonl for test clips {video: questions}, with small random frames per clip."""
    rows = []
    for i, (video, questions) in enumerate(clips.items()):
        for n in range(4):
            write_image(folder / video / f"{n}.png", (40 + 8 * i, 36), seed=10 * i + n)
        rows += [clip_row(video, k, q, video, mode_of(i)) for k, q in enumerate(questions, 1)]
    write_jsonl(folder / "inputs.jsonl", rows)
    return folder / "inputs.jsonl"


def infer_args(tiny_model_dir: Path, inputs: Path, out: Path, *extra: str) -> list[str]:
    """Command line of a run; answers capped at 12 tokens to keep the tests fast."""
    paths = ["--model", str(tiny_model_dir), "--inputs", str(inputs), "--out", str(out)]
    return [*paths, "--max-new-tokens", "12", "--dtype", "float32", *extra]


@pytest.fixture(scope="module")
def mixed_inputs(tmp_path_factory) -> Path:
    """Three clips, oao and video inputs, every question type."""
    clips = {"SAMM-1": CLIP_QUESTIONS, "CAS-2": CLIP_QUESTIONS[:3], "SAMM-3": CLIP_QUESTIONS[2:5]}
    return write_inputs(tmp_path_factory.mktemp("mixed"), clips, lambda i: ("oao", "video")[i % 2])


@pytest.fixture(scope="module")
def batch1_answers(tiny_model_dir, mixed_inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b1") / "answers.jsonl"
    assert main(infer_args(tiny_model_dir, mixed_inputs, out, "--batch-size", "1")) == 0
    return out


def test_batch_size_does_not_change_answers(tiny_model_dir, mixed_inputs, batch1_answers, tmp_path):
    out = tmp_path / "answers.jsonl"
    main(infer_args(tiny_model_dir, mixed_inputs, out, "--batch-size", "16"))
    assert out.read_bytes() == batch1_answers.read_bytes()
    answers = [row["answer"] for row in read_jsonl(out)]
    assert len(set(answers)) > len(answers) // 2, "answers should differ between questions"


def test_answers_keep_the_rows_and_their_order(mixed_inputs, batch1_answers):
    inputs, answers = read_jsonl(mixed_inputs), read_jsonl(batch1_answers)
    assert [a["video_id"] for a in answers] == [r["video_id"] for r in inputs]
    for row, answer in zip(inputs, answers, strict=True):
        assert list(answer) == ["video_id", "video", "question", "answer"]
        assert answer["question"] == row["question"] and isinstance(answer["answer"], str)
    # a video-mode row's frame list is dropped and its clip name restored
    assert {a["video"] for a in answers} == {"SAMM-1", "CAS-2", "SAMM-3"}
    assert not batch1_answers.with_name("answers.jsonl.partial").exists()


def test_sigkill_then_rerun_is_byte_identical(
    tiny_model_dir, mixed_inputs, batch1_answers, tmp_path
):
    out = tmp_path / "answers.jsonl"
    partial = tmp_path / "answers.jsonl.partial"
    argv = infer_args(tiny_model_dir, mixed_inputs, out, "--batch-size", "1")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vqa", "infer", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.is_file() and partial.read_text().count("\n") >= 3:  # header + 2 answers
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    answered = partial.read_text().count("\n") - 1
    assert 2 <= answered < len(read_jsonl(mixed_inputs)) and not out.exists()
    with partial.open("a") as f:  # as if killed in the middle of writing a line
        f.write('{"index": 7, "ans')
    assert main(argv) == 0
    assert out.read_bytes() == batch1_answers.read_bytes()


def test_a_different_run_refuses_to_resume(tiny_model_dir, tmp_path):
    inputs = write_inputs(tmp_path, {"SAMM-1": CLIP_QUESTIONS[:2]})
    out = tmp_path / "answers.jsonl"
    partial = tmp_path / "answers.jsonl.partial"
    partial.write_text('{"run": {"model": "someone-else"}}\n{"index": 0, "answer": "stale"}\n')
    with pytest.raises(UserError, match=r"another run \(.*model.*\).*--restart"):
        main(infer_args(tiny_model_dir, inputs, out, "--prompt-style", "guided"))
    assert not out.exists()
    main(infer_args(tiny_model_dir, inputs, out, "--prompt-style", "guided", "--restart"))
    assert "stale" not in out.read_text()


def test_the_answers_folder_is_made_as_the_other_commands_make_theirs(tiny_model_dir, tmp_path):
    inputs = write_inputs(tmp_path, {"SAMM-1": CLIP_QUESTIONS[:1]})
    out = tmp_path / "answers" / "zero-shot.jsonl"
    assert main(infer_args(tiny_model_dir, inputs, out)) == 0
    assert len(read_jsonl(out)) == 1


def test_a_model_that_does_not_load_leaves_no_unfinished_answers(tmp_path):
    inputs = write_inputs(tmp_path, {"SAMM-1": CLIP_QUESTIONS[:2]})
    out = tmp_path / "answers.jsonl"
    with pytest.raises(UserError):
        main(infer_args(tmp_path / "no-model", inputs, out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SAMM-1", "inputs.jsonl"]


def test_consistency_and_submission_files(tiny_model_dir, mixed_inputs, batch1_answers, tmp_path):
    out, subs = tmp_path / "answers.jsonl", tmp_path / "submission"
    main(
        infer_args(
            tiny_model_dir,
            mixed_inputs,
            out,
            "--consistency",
            "--submission-dir",
            str(subs),
            "--challenge",
            "2026",
        )
    )
    rows = read_jsonl(out)
    raw = {r["video_id"]: r["answer"] for r in read_jsonl(batch1_answers)}
    assert [r.get("raw_answer", r["answer"]) for r in rows] == list(raw.values())
    by_clip: dict[str, dict[str, str]] = {}
    for row in rows:
        by_clip.setdefault(row["video"], {})[row["question"]] = row["answer"]
    for answers in by_clip.values():
        if Q["fine"] in answers:
            assert answers[Q["coarse"]] == FINE_TO_COARSE[answers[Q["fine"]]]
        if Q["combined_many"] in answers:
            aus, fine, coarse = parse_combined(answers[Q["combined_many"]])
            assert ", ".join(aus) == answers[Q["au_many"]]
            assert (fine, coarse) == (
                answers.get(Q["fine"], fine),
                answers.get(Q["coarse"], coarse),
            )
    names = sorted(p.name for p in subs.iterdir())
    assert names == ["me_vqa_casme3_v2_test_pred.jsonl", "me_vqa_samm_v2_test_pred.jsonl"]
    samm = read_jsonl(subs / "me_vqa_samm_v2_test_pred.jsonl")
    assert samm == [
        {k: r[k] for k in ("video_id", "video", "question", "answer")}
        for r in rows
        if r["video"].startswith("SAMM")
    ]


def test_adapter_loads_and_changes_answers(tiny_model_dir, mixed_inputs, batch1_answers, tmp_path):
    from peft import LoraConfig, get_peft_model

    from vqa.model import load_model

    torch.manual_seed(0)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        init_lora_weights=False,
        target_modules=r".*language_model.*\.(q_proj|v_proj)",
    )
    adapter = tmp_path / "adapter"
    get_peft_model(load_model(tiny_model_dir, dtype=torch.float32), config).save_pretrained(adapter)
    assert (adapter / "adapter_model.safetensors").is_file()
    out = tmp_path / "answers.jsonl"
    main(["--adapter", str(adapter), *infer_args(tiny_model_dir, mixed_inputs, out)[2:]])
    base, tuned = read_jsonl(batch1_answers), read_jsonl(out)
    assert [r["video_id"] for r in tuned] == [r["video_id"] for r in base]
    assert (
        sum(a["answer"] != b["answer"] for a, b in zip(base, tuned, strict=True)) >= len(base) // 2
    )

    with pytest.raises(
        UserError, match=re.escape(f"trained on '{tiny_model_dir}' but --model is 'Qwen/")
    ):
        main(
            [
                "--model",
                "Qwen/Qwen2.5-VL-7B-Instruct",
                "--adapter",
                str(adapter),
                "--inputs",
                str(mixed_inputs),
                "--out",
                str(out),
            ]
        )


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    status = cli.main(["infer", *argv])
    return status, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing inputs", r"nope\.jsonl: file not found"),
        ("no question", r"inputs\.jsonl:2: row has no question"),
        ("missing image", r"inputs\.jsonl:1: visual file 'SAMM-1/2\.png' is missing"),
        ("older inputs format", r"inputs\.jsonl:1: .*older build-inputs.*\(rebuild it with"),
        ("output file is a folder", r"answers\.jsonl: this output file is a folder"),
        ("submission folder is a file", r"subs: a file is in the way of this output folder"),
        ("garbage in the unfinished answers", r"answers\.jsonl\.partial:2: not a line of infer"),
        (
            "training rows for a submission",
            r"inputs\.jsonl:1: a submission needs the challenge test rows",
        ),
        ("under a launcher", r"^error: infer runs as one process, not 2 \(.*torchrun"),
        (
            "v2 rows under the 2025 names",
            r"inputs\.jsonl:2: an ME-VQA-v2 analysis question .*\(add --challenge 2026",
        ),
    ],
)
def test_bad_input_is_one_line(case, message, tiny_model_dir, tmp_path, capsys, monkeypatch):
    inputs = write_inputs(tmp_path, {"SAMM-1": CLIP_QUESTIONS[:2]})
    rows, out, extra = read_jsonl(inputs), tmp_path / "answers.jsonl", []
    if case == "missing inputs":
        inputs = tmp_path / "nope.jsonl"
    elif case == "no question":
        del rows[1]["question"]
    elif case == "missing image":
        (tmp_path / "SAMM-1" / "2.png").unlink()
    elif case == "older inputs format":
        rows[0]["video"] = ["SAMM-1/0.png", "SAMM-1/1.png"]  # frames stored under the clip name
    elif case == "output file is a folder":
        out.mkdir()
    elif case == "submission folder is a file":
        (tmp_path / "subs").write_text("")
        extra = ["--submission-dir", str(tmp_path / "subs")]
    elif case == "v2 rows under the 2025 names":
        rows[1]["question"] = official()["analysis"]["questions"][0]
        extra = ["--submission-dir", str(tmp_path / "subs")]
    elif case == "under a launcher":
        monkeypatch.setenv("WORLD_SIZE", "2")
    elif case == "garbage in the unfinished answers":
        (tmp_path / "answers.jsonl.partial").write_text('{"run": {}}\ngarbage\n{"index": 0}\n')
    else:
        rows = [
            {"id": "casme2_s_1", **{k: v for k, v in r.items() if k != "video_id"}} for r in rows
        ]
        extra = ["--submission-dir", str(tmp_path / "subs")]
    if inputs.name == "inputs.jsonl":
        write_jsonl(inputs, rows)
    status, err = run_cli(infer_args(tiny_model_dir, inputs, out, *extra), capsys)
    assert status == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert re.search(message, err), err
    assert not out.is_file()


@pytest.mark.skipif(not SHARED_TEST.is_dir(), reason="../shared/data/megc2025/test not present")
def test_submission_for_the_shared_test_files(tiny_model_dir, tmp_path):
    """Zero-shot answers for the real test questions; frames written for clips named like them."""
    test_files = sorted(SHARED_TEST.glob("me_vqa_*_test_to_answer.jsonl"))
    rows = [row for path in test_files for row in read_jsonl(path)]
    for video in {row["video"] for row in rows}:
        for n in range(3):
            write_image(tmp_path / video / f"{n}.png", 28, seed=n)
    inputs = [
        {
            **r,
            "mode": "oao",
            "images": [f"{r['video']}/{n}.png" for n in range(3)],
            "apex_estimated": True,
        }
        for r in rows
    ]
    write_jsonl(tmp_path / "inputs.jsonl", inputs)
    subs = tmp_path / "submission"
    main(
        infer_args(
            tiny_model_dir,
            tmp_path / "inputs.jsonl",
            tmp_path / "answers.jsonl",
            "--batch-size",
            "16",
            "--submission-dir",
            str(subs),
        )
    )
    for path in test_files:
        expected = read_jsonl(path)
        got = read_jsonl(subs / path.name.replace("_to_answer", "_pred"))
        assert [{**r, "answer": ""} for r in got] == expected
        assert [list(r) for r in got] == [list(r) for r in expected]
        assert all(isinstance(r["answer"], str) and r["answer"] for r in got)
    assert (
        json.loads((tmp_path / "answers.jsonl").read_text().splitlines()[0])["video_id"]
        == rows[0]["video_id"]
    )


@pytest.mark.parametrize(
    ("config", "weights", "message"),
    [
        ('{"base_model_name_or_path": "x"}', "adapter_model.bin", "not in safetensors format"),
        ('{"base_model_name_or_path": ', "adapter_model.safetensors", "is not valid JSON"),
    ],
)
def test_bad_adapter_folders_are_refused(
    tiny_model_dir, tmp_path, capsys, config, weights, message
):
    inputs = write_inputs(tmp_path, {"SAMM-1": CLIP_QUESTIONS[:1]})
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(config)
    (adapter / weights).write_bytes(b"weights")
    argv = ["--adapter", str(adapter), *infer_args(tiny_model_dir, inputs, tmp_path / "a.jsonl")]
    status, err = run_cli(argv, capsys)
    assert status == 2 and "\n" not in err and message in err, err
    assert not (tmp_path / "a.jsonl").exists()
