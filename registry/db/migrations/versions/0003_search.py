"""search: NOTIFY the search gazetteer when the registry changes.

Statement-level triggers with transition tables on the tables the gazetteer is built from send
`pg_notify('registry_search', '<table>:<id>,<id>,…')` after each statement (ids in chunks of
400, well under the 8000-byte payload limit), or `'<table>:*'` when a statement changed more
than 500 rows (a bulk load): the listener then reloads instead of applying rows one by one.
Notifications are delivered at commit, so a rolled-back change is never announced.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHANNEL = "registry_search"
TABLES = ("addresses", "place_names", "divisions", "facilities", "heritage_items")

NOTIFY = f"""
CREATE FUNCTION registry_search_notify() RETURNS trigger LANGUAGE plpgsql AS $$
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
        PERFORM pg_notify('{CHANNEL}', tbl || ':*');
        RETURN NULL;
    END IF;
    IF TG_ARGV[1] = 'place' THEN
        FOR chunk IN
            SELECT string_agg(id::text, ',') FROM (
                SELECT place_name_id AS id, (row_number() OVER ()) / 400 AS g
                FROM (SELECT DISTINCT place_name_id FROM changed) d) s GROUP BY g
        LOOP
            PERFORM pg_notify('{CHANNEL}', tbl || ':' || chunk);
        END LOOP;
    ELSE
        FOR chunk IN
            SELECT string_agg(id::text, ',') FROM (
                SELECT id, (row_number() OVER ()) / 400 AS g FROM changed) s GROUP BY g
        LOOP
            PERFORM pg_notify('{CHANNEL}', tbl || ':' || chunk);
        END LOOP;
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(NOTIFY)
    for table in TABLES:
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER search_notify_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING NEW TABLE AS changed FOR EACH STATEMENT "
                f"EXECUTE FUNCTION registry_search_notify('{table}', 'row')"
            )
    for event, ref in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
        op.execute(
            f"CREATE TRIGGER search_notify_{event.lower()} AFTER {event} ON place_name_aliases "
            f"REFERENCING {ref} TABLE AS changed FOR EACH STATEMENT "
            f"EXECUTE FUNCTION registry_search_notify('place_names', 'place')"
        )


def downgrade() -> None:
    for table in TABLES:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS search_notify_{event} ON {table}")
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS search_notify_{event} ON place_name_aliases")
    op.execute("DROP FUNCTION IF EXISTS registry_search_notify()")
