"""A persistent judgment cache: raw judge text keyed on (judge cache key, prompt hash), in one SQLite file.

SQLite because several Snakemake jobs may judge at once: writes are short transactions, readers never block
(WAL journal), and a busy database is waited for rather than failed. Keep the file on a local disk (SQLite
locking over NFS is unreliable); on a cluster, give each node its own cache or run judging on one node.
The prompt text is stored beside the raw answer so that any cached verdict can be audited later.

Answers are written one by one as they arrive (a killed job loses only the calls in flight). Each row carries the
parse status of its answer and how many times the judge was asked: an unparsed answer is asked again on a later
run, up to the judge's ``max_asks``; the key is the judge's ``cache_key`` (endpoint, model and decoding settings;
never a secret), so a changed endpoint or temperature never reuses another judge's verdicts.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
create table if not exists judgments (
    judge_id text not null,
    prompt_hash text not null,
    raw text not null,
    prompt text not null,
    created real not null,
    status text not null default 'answered',
    asks integer not null default 1,
    primary key (judge_id, prompt_hash)
)
"""
# columns added after the first release of the cache: an older file gets them (its rows count as one ask each)
ADDED_COLUMNS = {
    "status": "alter table judgments add column status text not null default 'answered'",
    "asks": "alter table judgments add column asks integer not null default 1",
}
ANSWERED = "answered"  # stored, not yet parsed (a job killed between answer and parse)


@dataclass(frozen=True)
class CachedAnswer:
    raw: str
    status: str  # answered | ok | tie | unparsed
    asks: int


class JudgmentCache:
    def __init__(self, path: str | Path, timeout_s: float = 60.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s
        with self._connect() as db:
            db.execute("pragma journal_mode=wal")
            db.execute(SCHEMA)
            present = {row[1] for row in db.execute("pragma table_info(judgments)")}
            for column, statement in ADDED_COLUMNS.items():
                if column not in present:
                    db.execute(statement)

    @contextmanager
    def _connect(self):
        """One short transaction: committed on success, rolled back on error, always closed."""
        db = sqlite3.connect(self.path, timeout=self.timeout_s)
        try:
            with db:
                yield db
        finally:
            db.close()

    def get_many(self, judge_id: str, hashes: list[str]) -> dict[str, CachedAnswer]:
        found: dict[str, CachedAnswer] = {}
        unique = sorted(set(hashes))
        with self._connect() as db:
            for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    "select prompt_hash, raw, status, asks from judgments "
                    f"where judge_id = ? and prompt_hash in ({marks})",
                    [judge_id, *chunk],
                )
                found.update((h, CachedAnswer(raw, status, asks)) for h, raw, status, asks in rows)
        return found

    def put(self, judge_id: str, prompt_hash: str, raw: str, prompt: str, asks: int = 1) -> None:
        """Store one answer as it arrives; a re-asked prompt's new answer replaces the old one."""
        with self._connect() as db:
            db.execute(
                "insert or replace into judgments (judge_id, prompt_hash, raw, prompt, created, status, asks) "
                "values (?, ?, ?, ?, ?, ?, ?)",
                (judge_id, prompt_hash, raw, prompt, time.time(), ANSWERED, asks),
            )

    def set_status(self, judge_id: str, statuses: list[tuple[str, str]]) -> None:
        """Record how each (prompt hash, status) answer parsed."""
        with self._connect() as db:
            db.executemany(
                "update judgments set status = ? where judge_id = ? and prompt_hash = ?",
                [(status, judge_id, h) for h, status in statuses],
            )

    def __len__(self) -> int:
        with self._connect() as db:
            return db.execute("select count(*) from judgments").fetchone()[0]
