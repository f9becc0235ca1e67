"""The micro-expression databases me-vqa knows, one entry each.

Everything that names a database or needs its frame rate reads this table: the readers
(``data_builders/<name>.py`` for clips, ``data_builders/long_videos.py``), the synthetic
databases, the scorer (which database an id belongs to) and the report (how to write its
name). A new database is one more entry here plus its reader.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Database:
    """One database: its key, the name papers write, the frame rate of its videos, and whether
    it holds short clips (read by ``data_builders/<name>.py``) or long videos (read by
    ``data_builders/long_videos.py``)."""

    name: str  # the rows' ``dataset``, the prefix of the organisers' ids
    title: str
    fps: int
    long: bool = False


DATABASES: dict[str, Database] = {
    db.name: db
    for db in (
        Database("casme2", "CASME II", 200),
        Database("samm", "SAMM", 200),
        Database("smic", "SMIC", 100),  # SMIC-HS, the high-speed part
        Database("casme3", "CAS(ME)^3", 30),
        Database("samm_lv", "SAMM Long Videos", 200, long=True),
        Database("casme_sq", "CAS(ME)^2", 30, long=True),
        Database("casme3_lv", "CAS(ME)^3 long videos", 30, long=True),
    )
}


def title(name: str) -> str:
    """How papers write a database (an unknown key as it is)."""
    return DATABASES[name].title if name in DATABASES else name


def of_id(row_id: str) -> str | None:
    """The database whose name starts an organisers' id (``samm_006_1_2_1``), if any.

    Longer names are tried first, so a ``samm_lv`` id is never taken for ``samm``."""
    key = row_id.lower()
    names = sorted(DATABASES, key=len, reverse=True)
    return next((name for name in names if key.startswith(name + "_")), None)
