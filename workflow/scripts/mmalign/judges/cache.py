"""A persistent judgment cache: raw judge text keyed on (judge id, prompt hash), in one SQLite file.

SQLite because several Snakemake jobs may judge at once: writes are short transactions, readers never block
(WAL journal), and a busy database is waited for rather than failed. Keep the file on a local disk (SQLite
locking over NFS is unreliable); on a cluster, give each node its own cache or run judging on one node.
The prompt text is stored beside the raw answer so that any cached verdict can be audited later.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
create table if not exists judgments (
    judge_id text not null,
    prompt_hash text not null,
    raw text not null,
    prompt text not null,
    created real not null,
    primary key (judge_id, prompt_hash)
)
"""


class JudgmentCache:
    def __init__(self, path: str | Path, timeout_s: float = 60.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s
        with self._connect() as db:
            db.execute("pragma journal_mode=wal")
            db.execute(SCHEMA)

    @contextmanager
    def _connect(self):
        """One short transaction: committed on success, rolled back on error, always closed."""
        db = sqlite3.connect(self.path, timeout=self.timeout_s)
        try:
            with db:
                yield db
        finally:
            db.close()

    def get_many(self, judge_id: str, hashes: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        unique = sorted(set(hashes))
        with self._connect() as db:
            for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"select prompt_hash, raw from judgments where judge_id = ? and prompt_hash in ({marks})",
                    [judge_id, *chunk],
                )
                found.update(rows)
        return found

    def put_many(self, judge_id: str, entries: list[tuple[str, str, str]]) -> None:
        """Store (prompt hash, raw, prompt) entries; an existing entry is kept (first answer wins)."""
        now = time.time()
        with self._connect() as db:
            db.executemany(
                "insert or ignore into judgments (judge_id, prompt_hash, raw, prompt, created) values (?, ?, ?, ?, ?)",
                [(judge_id, h, raw, prompt, now) for h, raw, prompt in entries],
            )

    def __len__(self) -> int:
        with self._connect() as db:
            return db.execute("select count(*) from judgments").fetchone()[0]
