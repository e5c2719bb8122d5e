"""``flask --app app store backup PATH`` and ``store purge``: the store's data, from a shell."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ..store.sql import is_postgresql
from ..store.sql.backup import BackupError, backup_sqlite

store_cli = AppGroup("store", help="The store: backups and retention.")

PROGRESS_LINES = 10

PG_DUMP_HINT = (
    "the store is PostgreSQL: back it up with pg_dump (for example pg_dump --format=custom"
    " --file=cti.dump followed by the database URL); this command copies a SQLite store"
)


def _services():
    return current_app.extensions["cti"]


@store_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
def backup(path: str) -> None:
    """Copy the SQLite store to PATH while the service runs: a consistent snapshot, written beside
    PATH and renamed into place once complete; CTI_DATABASE=PATH serves it as it is."""
    database = _services().settings.database
    if is_postgresql(database):
        raise click.ClickException(PG_DUMP_HINT)
    try:
        done = backup_sqlite(database, path, progress=_Progress(path))
    except (BackupError, OSError) as exc:
        raise click.ClickException(f"backup failed, {path} left as it was: {exc}") from None
    statuses = ", ".join(f"{status} {count}" for status, count in sorted(done.entries.items()))
    click.echo(
        f"backed up the store to {done.path}: {done.size:,} bytes"
        f" ({done.size / 1e6:.1f} MB), {sum(done.entries.values())} journal entries"
        + (f" ({statuses})" if statuses else "")
    )


class _Progress:
    """A line per tenth of the pages copied (a large store takes a while)."""

    def __init__(self, path: str):
        self.path = path
        self.shown = 0

    def __call__(self, copied: int, total: int) -> None:
        tenths = copied * PROGRESS_LINES // max(1, total)
        if tenths > self.shown and copied < total:
            self.shown = tenths
            click.echo(f"backup to {self.path}: {copied:,} of {total:,} pages copied")


@store_cli.command("purge")
def purge() -> None:
    """Run one retention pass now (the service runs one every 20 seconds by itself)."""
    report = _services().purger.purge.run()
    if report is None:
        raise click.ClickException("another process is purging now; nothing done")
    deleted = ", ".join(f"{name} {count}" for name, count in report.deleted.items())
    click.echo(f"deleted: {deleted}; free pages given back: {report.pages}")
