"""``allm sessions``: the local store of CLI conversations, and its subcommand.

Owns `SessionStore`, a small SQLite file (``sessions.db``) in the user's data
directory that keeps one `allm.Session` per name as tagged JSON (`allm.dumps`), plus
the model it talks to. The directory is ``$ALLM_HOME`` when set (tests use it), else
``$XDG_DATA_HOME/allm``, else ``~/.local/share/allm``. A session row is written only
after a turn completed, in one transaction, so an interrupted or failed turn leaves
the stored conversation exactly as it was. No API key is ever stored (sessions carry
none).

- ``allm sessions list``: name, model, status, message count, last update.
- ``allm sessions show NAME [--json]``: the transcript (or the stored JSON).
- ``allm sessions delete NAME``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .cli import error_line, register

if TYPE_CHECKING:
    from .session import Session

__all__ = ["SessionStore", "StoredSession", "data_dir"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    name TEXT PRIMARY KEY,
    model TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    session_json TEXT NOT NULL
)
"""


def data_dir() -> Path:
    """Where the CLI keeps its data (``$ALLM_HOME``, ``$XDG_DATA_HOME/allm`` or
    ``~/.local/share/allm``)."""
    home = os.environ.get("ALLM_HOME")
    if home:
        return Path(home)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "allm"


@dataclass(frozen=True, slots=True)
class StoredSession:
    name: str
    model: str | None
    created: float
    updated: float
    session_json: str

    def session(self) -> Session:
        from .serializer import loads
        from .session import Session

        value = loads(self.session_json)
        if not isinstance(value, Session):
            from .errors import ValidationError

            raise ValidationError("invalid_session",
                                  f"stored session {self.name!r} is not a Session",
                                  errors=[("session_json", "not_a_session")])
        return value


class SessionStore:
    """Named sessions in one SQLite file (opened per operation; safe across processes)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / "sessions.db"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction (committed on success, rolled back on error), then close."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            with conn:
                conn.execute(_SCHEMA)
                yield conn
        finally:
            conn.close()

    def get(self, name: str) -> StoredSession | None:
        if not self.path.exists():
            return None
        with self._connect() as conn:
            row = conn.execute(
                "SELECT name, model, created, updated, session_json FROM sessions "
                "WHERE name = ?", (name,)).fetchone()
        return StoredSession(*row) if row else None

    def save(self, name: str, session: Session, model: str | None) -> None:
        from .serializer import dumps

        blob = dumps(session)
        now = time.time()
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO sessions (name, model, created, updated, session_json) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "model = excluded.model, updated = excluded.updated, "
                "session_json = excluded.session_json",
                (name, model, now, now, blob))

    def delete(self, name: str) -> bool:
        if not self.path.exists():
            return False
        with self._connect() as conn:
            cur = conn.execute("DELETE FROM sessions WHERE name = ?", (name,))
        return cur.rowcount > 0

    def list(self) -> list[StoredSession]:
        if not self.path.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT name, model, created, updated, session_json FROM sessions "
                "ORDER BY updated DESC").fetchall()
        return [StoredSession(*row) for row in rows]


# -- the subcommand -----------------------------------------------------------------------


def _setup(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("list", help="list stored sessions")
    show = sub.add_parser("show", help="print a session's transcript")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print the stored JSON instead")
    delete = sub.add_parser("delete", help="delete a stored session")
    delete.add_argument("name")


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def run_sessions(args: argparse.Namespace) -> int:
    from .errors import AllmError

    store = SessionStore()
    action = getattr(args, "action", None)
    if action in (None, "list"):
        rows = store.list()
        if not rows:
            print(f"no sessions (stored in {store.path})")
            return 0
        for row in rows:
            try:
                s = row.session()
                status, count = s.status, len(s.messages)
            except AllmError:
                status, count = "unreadable", 0
            print(f"{row.name}\t{row.model or '-'}\t{status}\t{count} messages\t"
                  f"{_when(row.updated)}")
        return 0
    found = store.get(args.name)
    if action == "delete":
        if not store.delete(args.name):
            error_line(f"no session named {args.name!r}")
            return 1
        print(f"deleted {args.name}")
        return 0
    if found is None:
        error_line(f"no session named {args.name!r}")
        return 1
    if args.json:
        print(found.session_json)
        return 0
    try:
        session = found.session()
    except AllmError as exc:
        error_line(exc.message)
        return 1
    print(f"# {found.name} ({found.model or '-'}, {session.status})", file=sys.stdout)
    for message in session.messages:
        text = message.text
        images = len(message.images)
        extra = f" [+{images} image{'s' if images != 1 else ''}]" if images else ""
        print(f"\n{message.role}:{extra} {text}")
    return 0


register("sessions", "list, show or delete the conversations `allm chat --session` keeps",
         _setup, run_sessions)
