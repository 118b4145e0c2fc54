"""Export jobs live in the database: every worker sees a job, and a job whose worker died is failed,
not left 'running' (the running worker holds an advisory lock; PostgreSQL frees it with the process)."""
from __future__ import annotations

import time

from sqlalchemy import text

from api.export_jobs import DIED, LOCK_CLASS, ExportJobs
from registry.exports import plan_export


def _running_job(engine, job_id: str) -> int:
    with engine.begin() as c:
        return c.execute(text("""INSERT INTO export_jobs (id, collection, format, agency, status, worker)
                                 VALUES (:i, 'addresses', 'gpkg', 'tests', 'running', 'elsewhere:1')
                                 RETURNING lock_key"""), {"i": job_id}).scalar_one()


def _drop(engine, *ids: str) -> None:
    with engine.begin() as c:
        c.execute(text("DELETE FROM export_jobs WHERE id = ANY(:i)"), {"i": list(ids)})


def test_should_fail_a_running_job_whose_worker_died_and_keep_one_whose_worker_lives(engine, tmp_path):
    jobs = ExportJobs(engine, tmp_path)
    _running_job(engine, "dead-worker-job")
    alive_key = _running_job(engine, "live-worker-job")
    holder = engine.connect()  # the live worker: its export connection holds the job's lock
    try:
        holder.execute(text("SELECT pg_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": alive_key})
        holder.commit()
        dead = jobs.get("dead-worker-job")
        assert dead.status == "failed" and dead.error == DIED
        assert jobs.get("live-worker-job").status == "running"
    finally:
        holder.invalidate()  # the live worker dies: its lock goes with its connection (not back to the pool)
        holder.close()
    try:
        assert jobs.get("live-worker-job").status == "failed"
    finally:
        _drop(engine, "dead-worker-job", "live-worker-job")


def test_should_show_a_job_started_by_one_worker_to_another(engine, reference, tmp_path):
    started_by, asked = ExportJobs(engine, tmp_path), ExportJobs(engine, tmp_path)
    with engine.connect() as conn:
        plan = plan_export(conn, "divisions-county")
    job = started_by.start(plan, "gpkg", agency="tests", encoding=None)
    try:
        for _ in range(200):
            seen = asked.get(job.id)
            if seen.status in ("done", "failed"):
                break
            time.sleep(0.05)
        assert seen.status == "done" and seen.rows_written == seen.rows_total == 5, seen
        assert seen.path is not None and seen.path.exists() and seen.path.parent == tmp_path / job.id
    finally:
        _drop(engine, job.id)
