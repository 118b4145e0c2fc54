"""Export jobs: a large export written in a background thread, with progress to poll, seen by
every API worker.

`POST /v1/exports/{collection}` checks the request at once (a bad format, CRS or division is a
400/404 then, not a failed job), records the job in `export_jobs` (migration 0010), then writes
the file in a thread on a connection of its own into `REGISTRY_EXPORT_DIR/<job id>/` and answers
202 with the job's URL; `GET /v1/export-jobs/{id}` — answered by whichever worker gets it — tells
rows written / rows in all from the table, and when done the `download` link.

A worker that dies mid-export leaves no job stuck in 'running': the thread holds a session
advisory lock (`LOCK_CLASS`, the job's `lock_key`) on its export connection for the job's whole
life, and PostgreSQL frees it when that process's connections go. Whoever reads a queued or
running job whose lock is free (a running one at once, a queued one after `QUEUED_GRACE_SECONDS`)
marks it failed. Finished jobs and their files are removed `KEEP_SECONDS` after they finish.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from registry.errors import Conflict, NotFound, RegistryError
from registry.exports import ExportPlan

log = logging.getLogger(__name__)

KEEP_SECONDS = 3600
MAX_RUNNING = 2  # across all workers: a 2-core machine, more would only slow the others down
LOCK_CLASS = 1313  # pg_advisory_lock(LOCK_CLASS, lock_key): "issue 13, export jobs"
QUEUED_GRACE_SECONDS = 30  # a queued job's thread takes its lock at once; after this, nobody will
DIED = "导出任务所在的进程已停止 / the worker process that ran this export stopped"
_COLUMNS = "id, lock_key, collection, format, agency, status, rows_total, rows_written, error, path"


@dataclass
class Job:
    id: str
    lock_key: int
    collection: str
    format: str
    agency: str
    status: str = "queued"  # queued → running → done | failed
    rows_total: int | None = None
    rows_written: int = 0
    error: str | None = None
    path: Path | None = None

    @classmethod
    def of(cls, row) -> Job:
        m = dict(row._mapping)
        m["path"] = Path(m["path"]) if m["path"] else None
        return cls(**m)

    def as_dict(self) -> dict:
        pct = None
        if self.rows_total:
            pct = round(100.0 * self.rows_written / self.rows_total, 1)
        elif self.status == "done":
            pct = 100.0
        return {"id": self.id, "collection": self.collection, "format": self.format, "status": self.status,
                "rows_total": self.rows_total, "rows_written": self.rows_written, "percent": pct,
                "error": self.error}


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ExportJobs:
    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine = engine
        self.folder = Path(folder)
        self._threads: dict[str, threading.Thread] = {}

    # -- housekeeping ---------------------------------------------------------------------------
    def _purge(self, conn: Connection) -> None:
        old = conn.execute(text("DELETE FROM export_jobs WHERE finished_at < now() - make_interval(secs => :s) "
                                "RETURNING id"), {"s": KEEP_SECONDS}).scalars().all()
        for job_id in old:
            shutil.rmtree(self.folder / job_id, ignore_errors=True)

    def _reap(self, conn: Connection, jobs: list[Job]) -> None:
        """Mark failed the queued/running jobs among `jobs` whose worker is gone (their lock is free)."""
        for job in jobs:
            if job.status not in ("queued", "running"):
                continue
            free = conn.execute(text("SELECT pg_try_advisory_lock(:c, :k)"),
                                {"c": LOCK_CLASS, "k": job.lock_key}).scalar_one()
            if not free:
                continue
            conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": LOCK_CLASS, "k": job.lock_key})
            failed = conn.execute(text("""
                UPDATE export_jobs SET status = 'failed', error = :e, finished_at = now(), updated_at = now()
                WHERE id = :i AND status = :s
                  AND (status = 'running' OR created_at < now() - make_interval(secs => :g))
                RETURNING status"""), {"e": DIED, "i": job.id, "s": job.status, "g": QUEUED_GRACE_SECONDS}).first()
            if failed is not None:
                log.warning("export job %s: its worker stopped; marked failed", job.id)
                job.status, job.error = "failed", DIED

    # -- the API --------------------------------------------------------------------------------
    def start(self, plan: ExportPlan, fmt: str, *, agency: str, encoding: str | None) -> Job:
        with self.engine.begin() as conn:
            conn.execute(text("LOCK TABLE export_jobs IN SHARE ROW EXCLUSIVE MODE"))  # one count at a time
            self._purge(conn)
            live = [Job.of(r) for r in conn.execute(text(
                f"SELECT {_COLUMNS} FROM export_jobs WHERE status IN ('queued', 'running')"))]
            self._reap(conn, live)
            running = sum(1 for j in live if j.status in ("queued", "running"))
            if running >= MAX_RUNNING:
                raise Conflict(f"已有 {running} 个导出在进行，请稍后再试 / {running} exports are running already: try "
                               "again when one has finished", parameter="collection")
            job = Job.of(conn.execute(text(f"""
                INSERT INTO export_jobs (id, collection, format, agency, worker) VALUES (:i, :c, :f, :a, :w)
                RETURNING {_COLUMNS}"""), {"i": secrets.token_urlsafe(12), "c": plan.collection.id, "f": fmt,
                                           "a": agency, "w": _worker()}).one())
        t = threading.Thread(target=self._run, args=(job, plan, encoding), name=f"export-{job.id}", daemon=True)
        self._threads[job.id] = t
        t.start()
        return job

    def get(self, job_id: str) -> Job:
        with self.engine.begin() as conn:
            row = conn.execute(text(f"SELECT {_COLUMNS} FROM export_jobs WHERE id = :i"), {"i": job_id}).first()
            if row is None:
                raise NotFound(f"没有导出任务 {job_id} / no export job {job_id!r}", parameter="job_id")
            job = Job.of(row)
            self._reap(conn, [job])
        return job

    def _set(self, job_id: str, **values) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        done = ", finished_at = now()" if values.get("status") in ("done", "failed") else ""
        with self.engine.begin() as conn:
            conn.execute(text(f"UPDATE export_jobs SET {sets}, updated_at = now(){done} WHERE id = :job_id"),
                         {**values, "job_id": job_id})

    def _run(self, job: Job, plan: ExportPlan, encoding: str | None) -> None:
        from loaders.export_cli import export_to_folder

        folder = self.folder / job.id
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": job.lock_key})
                try:
                    conn.commit()  # the lock is the session's: it outlives this transaction
                    self._set(job.id, status="running", rows_total=plan.count(conn))
                    path, rows = export_to_folder(conn, plan, job.format, folder, encoding=encoding,
                                                  progress=lambda n: self._set(job.id, rows_written=n))
                    conn.rollback()  # end the export's snapshot before the unlock below
                    self._set(job.id, status="done", rows_written=rows, path=str(path))
                finally:
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": LOCK_CLASS, "k": job.lock_key})
                    conn.commit()
        except RegistryError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self._set(job.id, status="failed", error=exc.message)
        except Exception:  # noqa: BLE001  (the thread must record the failure, not die silently)
            log.exception("export job %s failed", job.id)
            shutil.rmtree(folder, ignore_errors=True)
            self._set(job.id, status="failed", error="导出失败（服务器内部错误）/ the export failed (internal error)")
        finally:
            self._threads.pop(job.id, None)

    def close(self) -> None:
        """At shutdown: the jobs this process is still writing are failed now, not left to be found out."""
        for job_id in list(self._threads):
            try:
                self._set(job_id, status="failed", error=DIED)
            except Exception:  # noqa: BLE001  (the database may be gone already)
                log.warning("export job %s: could not be marked failed at shutdown", job_id)
