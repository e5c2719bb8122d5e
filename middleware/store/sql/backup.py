"""A copy of a live SQLite store (``flask --app app store backup PATH``).

SQLite's online backup API copies the pages ``STEP_PAGES`` at a time, all under one read
transaction of the live store: the copy is the snapshot of the moment it started, and the backup
never restarts however much the service writes meanwhile (in WAL mode a reader never holds writers
up, though the WAL is not checkpointed past it until it ends). The copy goes to a temporary file beside PATH, is checked (``PRAGMA quick_check``),
synced, and only then renamed over PATH (and the directory synced): a backup killed at any moment
leaves PATH as it was (absent, or the previous complete copy) and never touches the live store,
which it only reads. A killed backup can leave its temporary file (``.NAME.*.partial``) beside
PATH; the next backup does not need it and it may be deleted. The copy is a store as it is:
``CTI_DATABASE=PATH`` serves it.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

BUSY_TIMEOUT_SECONDS = 30.0
STEP_PAGES = 1024  # 4 MB of the default page size between two progress reports

#: (pages copied, pages in all), after each step
Progress = Callable[[int, int], object]


class BackupError(Exception):
    """The backup could not be made; the message says why (PATH is left as it was)."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int  # bytes
    entries: dict[str, int]  # journal entries per status


def backup_sqlite(
    source: str, path: str | os.PathLike, *, progress: Progress | None = None
) -> Backup:
    """Copy the SQLite store at ``source`` to ``path``, replacing a previous copy there."""
    target = Path(path).absolute()
    if not Path(source).is_file():
        raise BackupError(f"no SQLite store at {source}")
    if target.is_dir():
        raise BackupError(f"{target} is a directory: give the backup's file name")
    if not target.parent.is_dir():
        raise BackupError(f"no such directory: {target.parent}")
    if target.exists() and target.samefile(source):
        raise BackupError(f"{target} is the live store itself")
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    try:
        entries = _copy(source, partial, progress)
        _sync(partial)
        os.replace(partial, target)
        _sync(target.parent)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return Backup(target, target.stat().st_size, entries)


def _copy(source: str, partial: str, progress: Progress | None) -> dict[str, int]:
    """The live store's pages into ``partial`` (one snapshot), checked; its entries."""
    # mode=rw: never create a store where there was none
    live = sqlite3.connect(
        f"file:{quote(str(Path(source).absolute()))}?mode=rw",
        uri=True,
        timeout=BUSY_TIMEOUT_SECONDS,
        isolation_level=None,
    )
    copy = sqlite3.connect(partial, isolation_level=None)
    try:
        live.execute("BEGIN")
        live.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
        report = None
        if progress is not None:

            def report(_status, remaining: int, total: int) -> None:
                progress(total - remaining, total)

        live.backup(copy, pages=STEP_PAGES, progress=report)
        live.execute("ROLLBACK")  # the read ends
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        check = copy.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the copy failed its check: {check}")
        try:
            rows = copy.execute("SELECT status, count(*) FROM journal GROUP BY status").fetchall()
        except sqlite3.OperationalError:
            raise BackupError(f"{source} is not a store of this service (no journal)") from None
        return dict(rows)
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite: {exc}") from None
    finally:
        copy.close()
        live.close()


def _sync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
