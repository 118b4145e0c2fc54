"""Issue 11: the plate pages' render cache hears of plate and signing-key changes.

Statement-level triggers on `doorplates` and `doorplate_keys` send
`pg_notify('registry_serving', '<table>:<id>,<id>,…')` after each statement (ids in chunks of 400),
or `'<table>:*'` when a statement changed more than 500 rows (a city-wide issue). A channel of its
own, so that the search gazetteer's listener (`registry_search`, migration 0003) does not read
tables it has no use for. Delivered at commit: a rolled-back change is never announced.

Revision ID: 0011
Revises: 0010
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CHANNEL = "registry_serving"
TABLES = ("doorplates", "doorplate_keys")

NOTIFY = f"""
CREATE FUNCTION registry_serving_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    chunk text;
BEGIN
    SELECT count(*) INTO n FROM changed;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF n > 500 THEN
        PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ':*');
        RETURN NULL;
    END IF;
    FOR chunk IN
        SELECT string_agg(id::text, ',') FROM (
            SELECT id, (row_number() OVER ()) / 400 AS g FROM changed) s GROUP BY g
    LOOP
        PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ':' || chunk);
    END LOOP;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(NOTIFY)
    for table in TABLES:
        for event, ref in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            op.execute(
                f"CREATE TRIGGER serving_notify_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {ref} TABLE AS changed FOR EACH STATEMENT "
                f"EXECUTE FUNCTION registry_serving_notify()"
            )


def downgrade() -> None:
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS serving_notify_{event} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS registry_serving_notify()")
