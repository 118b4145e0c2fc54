"""Issue 13 speed: indexes for the change feed, export jobs shared by workers, a NOTIFY per applied
change set.

- The change feed (registry/feed.py) finds the rows a change set wrote with `WHERE change_set_id =
  :cs AND id > :after ORDER BY id` in every versioned table and its history: an index on
  (change_set_id, id) there (and (change_set_id, id, version) in the history) answers that
  without a scan of 1.6M addresses. `change_sets` gets (applied_at, id) for the feed's order.
- `ix_addresses_door_geom`: a partial GiST index of the active door-level addresses (no unit, no
  room), which the address tiles below z16 draw (registry/tiles.py): the densest z14 tile of the
  full city reads 5k rows instead of 26k.
- `export_jobs`: the jobs of `POST /v1/exports/{collection}` (api/export_jobs.py), so that every
  API worker sees them; `lock_key` is the advisory lock the running worker holds, so a job whose
  worker died is seen as such (the lock is free) and marked failed instead of staying 'running'.
- `registry_change_set_applied`: a trigger that NOTIFYs `registry_change_sets` with
  '<id>:<kind>' when a change set becomes applied (delivered at commit), so that each worker's
  tile cache drops the layers it touched without asking the database on every tile.

Revision ID: 0010
Revises: 0009
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

VERSIONED = ("divisions", "boundary_lines", "boundary_markers", "marker_reference_objects", "place_names",
             "heritage_items", "addresses", "doorplates", "facilities")
CHANNEL = "registry_change_sets"
# The address tiles below z16 carry the door-level addresses (registry/tiles.py ADDRESS_DOORS).
DOORS = "status = 'active' AND unit = '' AND room = ''"

NOTIFY = f"""
CREATE FUNCTION registry_change_set_applied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'applied' AND OLD.status IS DISTINCT FROM 'applied' THEN
        PERFORM pg_notify('{CHANNEL}', NEW.id || ':' || NEW.kind);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER notify_applied AFTER UPDATE OF status ON change_sets
    FOR EACH ROW EXECUTE FUNCTION registry_change_set_applied();
"""

EXPORT_JOBS = """
CREATE TABLE export_jobs (
    id text PRIMARY KEY,
    lock_key bigserial NOT NULL UNIQUE,
    collection text NOT NULL,
    format text NOT NULL,
    agency text NOT NULL,
    status text NOT NULL DEFAULT 'queued',
    rows_total bigint,
    rows_written bigint NOT NULL DEFAULT 0,
    error text,
    path text,
    worker text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CONSTRAINT ck_export_jobs_status CHECK (status IN ('queued', 'running', 'done', 'failed'))
);
CREATE INDEX ix_export_jobs_status ON export_jobs (status);
"""


def upgrade() -> None:
    for t in VERSIONED:
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{t}_change_set ON {t} (change_set_id, id)")
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{t}_history_change_set ON {t}_history (change_set_id, id, version)")
    op.execute("CREATE INDEX ix_change_sets_applied ON change_sets (applied_at, id) WHERE status = 'applied'")
    op.execute(f"CREATE INDEX ix_addresses_door_geom ON addresses USING gist (geom) WHERE {DOORS}")
    op.execute(EXPORT_JOBS)
    op.execute(NOTIFY)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS notify_applied ON change_sets")
    op.execute("DROP FUNCTION IF EXISTS registry_change_set_applied()")
    op.execute("DROP TABLE IF EXISTS export_jobs")
    op.execute("DROP INDEX IF EXISTS ix_addresses_door_geom")
    op.execute("DROP INDEX IF EXISTS ix_change_sets_applied")
    for t in VERSIONED:
        op.execute(f"DROP INDEX IF EXISTS ix_{t}_history_change_set")
        op.execute(f"DROP INDEX IF EXISTS ix_{t}_change_set")
