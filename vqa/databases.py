"""The micro-expression databases me-vqa knows, one entry each.

Everything that names a database or needs its frame rate reads this table: the readers
(``data_builders/<name>.py`` for clips, ``data_builders/long_videos.py``), the synthetic
databases (where ``me-vqa synth`` writes each one's sheet and frames, which the demo reads
back), the scorer (which database an id belongs to) and the report (how to write its name).
A new database is one more entry here plus its reader.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Database:
    """One database: its key, the name papers write, the frame rate of its videos, and whether
    it holds short clips (read by ``data_builders/<name>.py``) or long videos (read by
    ``data_builders/long_videos.py``); where ``me-vqa synth`` writes its label sheet (None:
    the database ships none, as SMIC) and the folder of its frame folders (None: not
    synthesised)."""

    name: str  # the rows' ``dataset``, the prefix of the organisers' ids
    title: str
    fps: int
    long: bool = False
    synth_sheet: str | None = None
    synth_frames: str | None = None


DATABASES: dict[str, Database] = {
    db.name: db
    for db in (
        Database("casme2", "CASME II", 200, synth_sheet="CASME2-coding-synthetic.xlsx",
                 synth_frames="CASME2_RAW_selected"),
        Database("samm", "SAMM", 200, synth_sheet="SAMM_Micro_FACS_Codes_synthetic.xlsx",
                 synth_frames="SAMM"),
        Database("smic", "SMIC", 100, synth_frames="HS"),  # SMIC-HS, the high-speed part
        Database("casme3", "CAS(ME)^3", 30,
                 synth_sheet="cas(me)3_part_A_ME_label_synthetic.xlsx", synth_frames="part_A"),
        Database("samm_lv", "SAMM Long Videos", 200, long=True,
                 synth_sheet="SAMM_LongVideos_synthetic.xlsx", synth_frames="SAMM_longvideos"),
        Database("casme_sq", "CAS(ME)^2", 30, long=True,
                 synth_sheet="CAS(ME)^2code_synthetic.xlsx", synth_frames="rawpic"),
        Database("casme3_lv", "CAS(ME)^3 long videos", 30, long=True),
    )
}  # fmt: skip


def title(name: str) -> str:
    """How papers write a database (an unknown key as it is)."""
    return DATABASES[name].title if name in DATABASES else name


def of_id(row_id: str) -> str | None:
    """The database whose name starts an organisers' id (``samm_006_1_2_1``), if any.

    Longer names are tried first, so a ``samm_lv`` id is never taken for ``samm``."""
    key = row_id.lower()
    names = sorted(DATABASES, key=len, reverse=True)
    return next((name for name in names if key.startswith(name + "_")), None)
