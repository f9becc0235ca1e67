"""``me-vqa convert``: a database's label sheet and frame folders -> clips.jsonl + qa.jsonl.

Long-video databases (``samm_lv``, ``casme_sq``, ``casme3_lv``) give instead
``OUT/videos.jsonl`` (one row per video with its events), ``OUT/intervals.jsonl`` (the
spotting ground truth) and ``OUT/lvqa.jsonl`` (ME-LVQA questions), see
:mod:`data_builders.long_videos` and :mod:`data_builders.lvqa`.

Writes ``OUT/clips.jsonl`` (one row per clip, frame paths relative to ``--frames``) and
``OUT/qa.jsonl`` (the MEGC2025 organisers' schema and phrasing). With ``--qa-from`` the
questions are the official file's own rows for this database, joined to the clips found
here; rows whose clip is missing are reported by id. Every input is checked before anything
is written.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from data_builders import long_videos
from data_builders.clips import Clip, Options, Report
from data_builders.lvqa import lvqa_rows
from data_builders.qa import QUESTION_SETS, join_official, qa_rows
from vqa.cli import command_parser
from vqa.databases import DATABASES
from vqa.errors import UserError
from vqa.jsonl import read_jsonl, write_jsonl_files

SHOWN_PER_KIND = 3


def build_parser():
    parser = command_parser("convert")
    parser.add_argument(
        "database",
        choices=list(DATABASES),
        help="which database the labels and frames are (samm_lv, casme_sq, casme3_lv: long videos)",
    )
    parser.add_argument("--labels", type=Path, help="label sheet (.xlsx/.xls/.csv); not for smic")
    parser.add_argument(
        "--frames", type=Path, required=True, help="folder of the clip frame folders"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder for clips.jsonl and qa.jsonl"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the yes/no AU draws and the LVQA k-th events"
    )
    parser.add_argument(
        "--analysis",
        action="store_true",
        help="add one open-ended analysis row per clip (MEGC2026 ME-VQA-v2), its reference "
        "built from the clip's AUs and classes with templates from prompts/questions.yaml",
    )
    parser.add_argument(
        "--question-set",
        choices=QUESTION_SETS,
        default="2025",
        help="2025: the MEGC2025 rows per clip; v2: what the MEGC2026 ME-VQA-v2 test files ask "
        "per clip (coarse, fine, AU(s), one yes/no, the analysis)",
    )
    parser.add_argument(
        "--all-events",
        action="store_true",
        help="long videos: ask the type of every event, not of two drawn ones",
    )
    parser.add_argument("--keep-others", action="store_true", help="keep clips labelled others")
    parser.add_argument(
        "--keep-fear-sadness",
        action="store_true",
        help="keep CASME II fear and sadness clips (the challenge dropped them)",
    )
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="drop rows with non-numeric or reversed onset/offset instead of stopping",
    )
    parser.add_argument(
        "--qa-from", type=Path, help="official ME-VQA jsonl: use its rows for this database"
    )
    parser.add_argument(
        "--vocab-from",
        type=Path,
        nargs="+",
        default=[],
        help="other clips.jsonl whose AUs the no-questions may also name "
        "(the organisers drew from CASME II and SAMM together)",
    )
    return parser


def check_out(out: Path) -> None:
    """Refuse an --out that cannot become a writable folder, without creating anything."""
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            "cannot write the output folder here", file=out, fix="give --out a writable folder"
        )


def extra_vocabulary(paths: list[Path]) -> set[int]:
    """AU numbers of the clips in other clips.jsonl files, every row checked to list its AUs."""
    numbers = set()
    for path in paths:
        for lineno, row in enumerate(read_jsonl(path), 1):
            aus = row.get("aus")
            if not isinstance(aus, list) or not all(
                isinstance(au, dict) and isinstance(au.get("number"), int) for au in aus
            ):
                raise UserError(
                    "row has no aus list of action units ({code, number, ...})",
                    file=path,
                    row=lineno,
                    fix="give --vocab-from the clips.jsonl files written by me-vqa convert",
                )
            numbers |= {au["number"] for au in aus}
    return numbers


def official_rows(path: Path) -> list[dict]:
    """The official jsonl, checked to be in the training schema (dataset and image_id on rows)."""
    rows = read_jsonl(path)
    for lineno, row in enumerate(rows, 1):
        if "dataset" not in row or "image_id" not in row:
            raise UserError(
                "row has no dataset/image_id",
                file=path,
                row=lineno,
                fix="--qa-from takes the training schema {id, dataset, image_id, ...}",
            )
    return rows


def questions(
    args, official: list[dict] | None, extra: set[int], clips: list[Clip], report: Report
) -> tuple[list[dict], list[Clip]]:
    """The qa rows (generated, or joined from the --qa-from rows) and the clips they use."""
    if official is None:
        return qa_rows(clips, args.seed, extra, args.analysis, args.question_set), clips
    rows, used, missing = join_official(official, clips, args.database)
    for row_id in missing:
        report.warn(
            "official row without clip", f"{row_id}: its clip is not among the converted clips"
        )
    if not rows:
        raise UserError(
            f"no row of {args.database} matches a converted clip",
            file=args.qa_from,
            fix="check that the file and the database agree",
        )
    return rows, used


def report_lines(report: Report) -> list[str]:
    """The dropped reasons and the warnings of a run, a few examples of each kind."""
    lines = [f"  dropped ({reason}): {n}" for reason, n in report.dropped.most_common()]
    for kind, messages in report.warnings.items():
        lines.append(f"  warning ({kind}): {len(messages)}")
        lines += [f"    {m}" for m in messages[:SHOWN_PER_KIND]]
        if len(messages) > SHOWN_PER_KIND:
            lines.append(f"    ... and {len(messages) - SHOWN_PER_KIND} more")
    return lines


def summary(database: str, clips: list[Clip], rows: list[dict], report: Report, out: Path) -> str:
    """What was read, kept, dropped and doubted, as printed at the end of a run."""
    dropped = sum(report.dropped.values())
    lines = [f"convert {database}: {report.read} clips read, {len(clips)} kept, {dropped} dropped"]
    lines += report_lines(report)
    lines.append(
        f"wrote {out / 'clips.jsonl'} ({len(clips)} clips), {out / 'qa.jsonl'} ({len(rows)} rows)"
    )
    return "\n".join(lines)


def convert_long(args, frames: Path) -> int:
    """``convert samm_lv|casme_sq|casme3_lv``: videos.jsonl, intervals.jsonl and lvqa.jsonl."""
    if args.qa_from or args.vocab_from or args.question_set != "2025":
        raise UserError(
            f"--qa-from, --vocab-from and --question-set are for clip databases, not "
            f"{args.database}",
            fix="leave them out",
        )
    options = Options(skip_bad_rows=args.skip_bad_rows)
    videos, report = long_videos.read_videos(args.database, args.labels, frames, options)
    if not videos:
        raise UserError("no event left to convert", file=args.labels, fix="check the sheet")
    intervals = long_videos.interval_rows(videos)
    rows = lvqa_rows(videos, args.seed, args.all_events)
    args.out.mkdir(parents=True, exist_ok=True)
    videos_rows = [video.to_row(frames) for video in videos]
    write_jsonl_files(
        {
            args.out / "videos.jsonl": videos_rows,
            args.out / "intervals.jsonl": intervals,
            args.out / "lvqa.jsonl": rows,
        }
    )
    events = [e for video in videos for e in video.events]
    types = ", ".join(f"{sum(e.type == t for e in events)} {t}" for t in long_videos.EVENT_TYPES)
    dropped = sum(report.dropped.values())
    lines = [
        f"convert {args.database}: {report.read} sheet rows read, {len(events)} events kept "
        f"({types}) in {len(videos)} videos, {dropped} dropped",
        *report_lines(report),
        f"wrote {args.out / 'videos.jsonl'} ({len(videos)} videos), "
        f"{args.out / 'intervals.jsonl'} ({len(intervals)} intervals), "
        f"{args.out / 'lvqa.jsonl'} ({len(rows)} rows)",
    ]
    print("\n".join(lines))
    return 0


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    frames = args.frames.resolve()
    if not frames.is_dir():
        raise UserError(
            "frames folder not found",
            file=args.frames,
            fix="give --frames the folder of clip frame folders",
        )
    if args.labels is None and args.database != "smic":
        raise UserError(
            f"{args.database} needs --labels", fix="give the database's label sheet with --labels"
        )
    if (args.analysis or args.question_set != "2025") and args.qa_from:
        raise UserError(
            "--analysis and --question-set generate rows; --qa-from keeps the official ones",
            fix="use one of them",
        )
    check_out(args.out)
    if args.database in long_videos.SPECS:
        return convert_long(args, frames)
    official = official_rows(args.qa_from) if args.qa_from else None
    extra = extra_vocabulary(args.vocab_from)
    options = Options(args.keep_others, args.keep_fear_sadness, args.skip_bad_rows)
    reader = importlib.import_module(f"data_builders.{args.database}")
    clips, report = reader.read_clips(args.labels, frames, options)
    if not clips:
        raise UserError(
            "no clip left to convert",
            file=args.labels or frames,
            fix="check the inputs and the --keep-* flags",
        )
    rows, clips = questions(args, official, extra, clips, report)
    args.out.mkdir(parents=True, exist_ok=True)
    clip_rows = [clip.to_row(frames) for clip in clips]
    write_jsonl_files({args.out / "clips.jsonl": clip_rows, args.out / "qa.jsonl": rows})
    print(summary(args.database, clips, rows, report, args.out))
    return 0
