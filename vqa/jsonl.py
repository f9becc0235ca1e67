"""Reading and atomically writing jsonl files and other outputs."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from vqa.errors import UserError


def read_jsonl(path: str | Path, *, allow_empty: bool = False) -> list[dict]:
    """Read a jsonl file; a missing file or a bad line is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError("file not found", file=path, fix="check the path")
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(
                    f"not valid JSON ({e.msg})",
                    file=path,
                    row=lineno,
                    fix="one JSON object per line",
                ) from None
            if not isinstance(row, dict):
                raise UserError(
                    "not a JSON object", file=path, row=lineno, fix="one JSON object per line"
                )
            rows.append(row)
    if not rows and not allow_empty:
        raise UserError("file is empty", file=path, fix="give a jsonl file with at least one row")
    return rows


def dumps(row: dict) -> str:
    """One jsonl line (no trailing newline), non-ASCII kept readable."""
    return json.dumps(row, ensure_ascii=False)


def check_output_folder(path: str | Path) -> None:
    """Refuse an output folder that cannot be made: a file is in its place or above it."""
    path = Path(path).absolute()
    first = next(p for p in (path, *path.parents) if p.exists())
    if not first.is_dir():
        raise UserError(
            "a file is in the way of this output folder", file=first, fix="give a folder path"
        )


def check_output_file(path: str | Path) -> None:
    """Refuse an output file that is a folder or whose folder cannot be made."""
    if Path(path).is_dir():
        raise UserError("this output file is a folder", file=path, fix="give a file path")
    check_output_folder(Path(path).parent)


def make_folder(path: str | Path) -> None:
    """Create the output folder ``path`` and its parents; a file in the way is a UserError."""
    check_output_folder(path)
    Path(path).mkdir(parents=True, exist_ok=True)


def _ordinary_mode(folder: bool) -> int:
    """The permissions an ordinary new file (or folder) gets under the user's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def _scratch_owner(path: Path) -> str:
    """The start of the scratch names of ``path`` made on this machine (the process id and a
    random part follow): ``.NAME.HOST-``."""
    return f".{path.name}.{socket.gethostname()}-"


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, and is another user's
        pass
    return False


def _remove_abandoned_scratch(path: Path) -> None:
    """Delete the scratch files and folders of ``path`` whose process on this machine is gone
    (killed before it could clean up); another machine's or a running process's are kept."""
    owner = _scratch_owner(path)
    for scratch in path.parent.glob(glob.escape(owner) + "*.tmp"):
        pid = scratch.name[len(owner) :].split(".", 1)[0]
        if pid.isdigit() and _process_is_gone(int(pid)):
            if scratch.is_dir():
                shutil.rmtree(scratch, ignore_errors=True)
            else:
                scratch.unlink(missing_ok=True)


def _scratch_beside(path: Path, *, folder: bool) -> Path:
    """A new hidden temporary file (or folder) in ``path``'s folder, named after ``path`` and
    this process; scratch a killed run left for ``path`` is removed first."""
    if not path.parent.is_dir():
        raise UserError("output folder does not exist", file=path.parent, fix="create it first")
    if path.exists() and path.is_dir() != folder:
        what = "a folder, not a file" if folder else "a file, not a folder"
        raise UserError(f"this output should be {what}", file=path, fix="give another path")
    _remove_abandoned_scratch(path)
    where = {
        "dir": path.parent,
        "prefix": f"{_scratch_owner(path)}{os.getpid()}.",
        "suffix": ".tmp",
    }
    try:
        if folder:
            return Path(tempfile.mkdtemp(**where))
        fd, name = tempfile.mkstemp(**where)
    except OSError as e:
        raise UserError(
            f"cannot write here ({e.strerror})", file=path.parent, fix="choose a writable folder"
        ) from None
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    tmp = _scratch_beside(Path(path), folder=False)
    try:
        yield tmp
        tmp.chmod(_ordinary_mode(folder=False))  # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``, renamed to ``path`` if the block succeeds.

    An existing ``path`` is deleted first with ``overwrite``; otherwise only an empty one is
    replaced, and a full one makes the rename fail (``OSError``) and the new folder vanish.
    """
    path = Path(path)
    scratch = _scratch_beside(path, folder=True)
    try:
        yield scratch
        scratch.chmod(_ordinary_mode(folder=True))  # mkdtemp makes it private
        if overwrite and path.exists():
            shutil.rmtree(path)
        os.replace(scratch, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Write rows atomically: the file appears complete or not at all."""
    write_jsonl_files({path: rows})


def write_jsonl_files(files: dict[str | Path, Iterable[dict]]) -> None:
    """Write files that belong together (path -> rows): each is written in full beside its
    place, and they replace the old ones only once all are written, so a failure (or a kill
    while writing) leaves the old set whole instead of new files beside old ones."""
    with contextlib.ExitStack() as stack:
        for path, rows in files.items():
            tmp = stack.enter_context(atomic_path(path))
            with tmp.open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(dumps(row) + "\n")
