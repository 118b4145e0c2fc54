"""Export jobs: a large export written in a background thread, with progress to poll.

`POST /v1/exports/{collection}` checks the request at once (a bad format, CRS or division is a
400/404 then, not a failed job), then writes the file in a thread on a connection of its own and
answers 202 with the job's URL; `GET /v1/export-jobs/{id}` tells rows written / rows in all, and
when done the `download` link. Jobs live in the API process that took them (with several workers
a poll must reach the same process: a known limit) and their files are removed an hour after they
finish or when the process stops.
"""
from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from registry.errors import Conflict, NotFound, RegistryError
from registry.exports import ExportPlan

log = logging.getLogger(__name__)

KEEP_SECONDS = 3600
MAX_RUNNING = 2  # a 2-core machine: more would only slow the others down


@dataclass
class Job:
    id: str
    collection: str
    format: str
    agency: str
    status: str = "queued"  # queued → running → done | failed
    rows_total: int | None = None
    rows_written: int = 0
    error: str | None = None
    path: Path | None = None
    folder: Path | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def as_dict(self) -> dict:
        pct = None
        if self.rows_total:
            pct = round(100.0 * self.rows_written / self.rows_total, 1)
        elif self.status == "done":
            pct = 100.0
        return {"id": self.id, "collection": self.collection, "format": self.format, "status": self.status,
                "rows_total": self.rows_total, "rows_written": self.rows_written, "percent": pct,
                "error": self.error}


class ExportJobs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()

    def _purge(self) -> None:
        now = time.time()
        for job_id, job in list(self.jobs.items()):
            if job.finished and now - job.finished > KEEP_SECONDS:
                if job.folder:
                    shutil.rmtree(job.folder, ignore_errors=True)
                del self.jobs[job_id]

    def start(self, plan: ExportPlan, fmt: str, *, agency: str, encoding: str | None) -> Job:
        with self.lock:
            self._purge()
            running = sum(1 for j in self.jobs.values() if j.status in ("queued", "running"))
            if running >= MAX_RUNNING:
                raise Conflict(f"已有 {running} 个导出在进行，请稍后再试 / {running} exports are running already: try "
                               "again when one has finished", parameter="collection")
            job = Job(secrets.token_urlsafe(12), plan.collection.id, fmt, agency)
            self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, plan, encoding), name=f"export-{job.id}", daemon=True).start()
        return job

    def _run(self, job: Job, plan: ExportPlan, encoding: str | None) -> None:
        from loaders.export_cli import export_to_temp

        def progress(n: int) -> None:
            job.rows_written = n

        try:
            job.status = "running"
            with self.engine.connect() as conn:
                job.rows_total = plan.count(conn)
                job.path, job.folder, job.rows_written = export_to_temp(conn, plan, job.format, encoding=encoding,
                                                                        progress=progress)
            job.status = "done"
        except RegistryError as exc:
            job.status, job.error = "failed", exc.message
        except Exception:  # noqa: BLE001  (the thread must record the failure, not die silently)
            log.exception("export job %s failed", job.id)
            job.status, job.error = "failed", "导出失败（服务器内部错误）/ the export failed (internal error)"
        finally:
            job.finished = time.time()

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"没有导出任务 {job_id} / no export job {job_id!r}", parameter="job_id")
        return job

    def close(self) -> None:
        for job in self.jobs.values():
            if job.folder:
                shutil.rmtree(job.folder, ignore_errors=True)
