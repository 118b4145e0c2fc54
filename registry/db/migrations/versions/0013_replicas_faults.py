"""Issue 14: the search notifications are also written to a log that standbys can read.

LISTEN/NOTIFY does not cross to a streaming replica, so an API whose reads go to a replica
cannot hear `registry_search`. From here every payload the search triggers send (0003) is
also a row of `search_changes` (id, the sending transaction's id, time, payload), written in
the same transaction: it reaches the replicas with the WAL, and a follower polling the table
under its snapshot (registry/search/follow.py) sees exactly the committed changes. Rows older
than an hour are pruned by the trigger now and then (a follower that falls further behind
reloads the whole gazetteer anyway).

Revision ID: 0013
Revises: 0012
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CHANNEL = "registry_search"

TABLE = """
CREATE TABLE search_changes (
    id bigserial PRIMARY KEY,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at timestamptz NOT NULL DEFAULT now(),
    payload text NOT NULL
);
CREATE INDEX ix_search_changes_xid ON search_changes (xid);
"""

EMIT = f"""
CREATE FUNCTION registry_search_emit(payload text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', payload);
    INSERT INTO search_changes (payload) VALUES (payload);
    IF random() < 0.01 THEN
        DELETE FROM search_changes WHERE at < now() - interval '1 hour';
    END IF;
END $$;
"""


def _notify_function(send) -> str:
    """The statement trigger of 0003, sending each payload as the SQL `send(payload)` returns."""
    return f"""
CREATE OR REPLACE FUNCTION registry_search_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    chunk text;
    tbl text := coalesce(TG_ARGV[0], TG_TABLE_NAME);
BEGIN
    IF TG_ARGV[1] = 'place' THEN
        SELECT count(DISTINCT place_name_id) INTO n FROM changed;
    ELSE
        SELECT count(*) INTO n FROM changed;
    END IF;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF n > 500 THEN
        PERFORM {send("tbl || ':*'")};
        RETURN NULL;
    END IF;
    IF TG_ARGV[1] = 'place' THEN
        FOR chunk IN
            SELECT string_agg(id::text, ',') FROM (
                SELECT place_name_id AS id, (row_number() OVER ()) / 400 AS g
                FROM (SELECT DISTINCT place_name_id FROM changed) d) s GROUP BY g
        LOOP
            PERFORM {send("tbl || ':' || chunk")};
        END LOOP;
    ELSE
        FOR chunk IN
            SELECT string_agg(id::text, ',') FROM (
                SELECT id, (row_number() OVER ()) / 400 AS g FROM changed) s GROUP BY g
        LOOP
            PERFORM {send("tbl || ':' || chunk")};
        END LOOP;
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(TABLE)
    op.execute(EMIT)
    op.execute(_notify_function(lambda payload: f"registry_search_emit({payload})"))


def downgrade() -> None:
    op.execute(_notify_function(lambda payload: f"pg_notify('{CHANNEL}', {payload})"))
    op.execute("DROP FUNCTION IF EXISTS registry_search_emit(text)")
    op.execute("DROP TABLE IF EXISTS search_changes")
