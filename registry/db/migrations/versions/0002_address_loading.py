"""address loading: history written per statement, and addresses indexed by (division_id, local_seq).

1. History, set-based. 0001's trigger compared `to_jsonb(NEW)` with `to_jsonb(OLD)` (geometry
   goes through GeoJSON) and copied the old row with a dynamic INSERT, row by row: ~450 µs a row,
   4 s of a 10,000-row correction file. The versioned tables now carry two triggers:
   - `keep_history` BEFORE UPDATE OR DELETE FOR EACH ROW, `registry_version_row()`: refuses
     DELETE and a change of id, drops a no-op UPDATE (a record comparison, exact: equal
     columns apart from change_set_id and source), bumps `version`, sets valid_from/valid_to;
   - `write_history` AFTER UPDATE FOR EACH STATEMENT, `registry_write_history()`: copies every
     updated row's old version, with valid_to = now(), from the transition table in one INSERT.
   The promises are unchanged (no writer can skip history; a no-op UPDATE writes nothing).
   `registry_keep_history()` stays the generic one-trigger version (now with the same exact
   comparison) for any table wired the 0001 way.
2. `ix_addresses_division_seq (division_id, local_seq)` replaces `ix_addresses_division`: a
   load allocates each new address's code as the next sequence number of its village, one
   index probe per village instead of a scan of its addresses. The leading column serves every
   lookup the old index served.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

VERSIONED_TABLES = ("divisions", "boundary_lines", "boundary_markers", "place_names", "heritage_items", "addresses",
                    "doorplates", "facilities")

_REFUSE = """
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'rows of % are never deleted; retire them instead (id %)', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'the identifier of % % never changes', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    -- A no-op update writes no version (change_set_id and source alone do not make a change).
    same := NEW;
    same.change_set_id := OLD.change_set_id;
    same.source := OLD.source;
    IF same IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;
"""

VERSION_ROW = f"""
CREATE FUNCTION registry_version_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    same record;
BEGIN
{_REFUSE}
    NEW.version := OLD.version + 1;
    NEW.valid_from := now();
    NEW.valid_to := NULL;
    RETURN NEW;
END $$;
"""

WRITE_HISTORY = """
CREATE FUNCTION registry_write_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    vals text;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
           string_agg(CASE WHEN attname = 'valid_to' THEN 'now()' ELSE quote_ident(attname) END, ', ' ORDER BY attnum)
      INTO cols, vals
      FROM pg_attribute WHERE attrelid = TG_RELID AND attnum > 0 AND NOT attisdropped;
    EXECUTE format('INSERT INTO %I.%I (%s) SELECT %s FROM old_rows',
                   TG_TABLE_SCHEMA, TG_TABLE_NAME || '_history', cols, vals);
    RETURN NULL;
END $$;
"""

KEEP_HISTORY_EXACT = f"""
CREATE OR REPLACE FUNCTION registry_keep_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    same record;
BEGIN
{_REFUSE}
    OLD.valid_to := now();
    EXECUTE format('INSERT INTO %I.%I SELECT ($1).*', TG_TABLE_SCHEMA, TG_TABLE_NAME || '_history') USING OLD;
    NEW.version := OLD.version + 1;
    NEW.valid_from := now();
    NEW.valid_to := NULL;
    RETURN NEW;
END $$;
"""

KEEP_HISTORY_0001 = """
CREATE OR REPLACE FUNCTION registry_keep_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'rows of % are never deleted; retire them instead (id %)', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'the identifier of % % never changes', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    -- A no-op update writes no version.
    IF (to_jsonb(NEW) - 'change_set_id' - 'source') = (to_jsonb(OLD) - 'change_set_id' - 'source') THEN
        RETURN NULL;
    END IF;
    OLD.valid_to := now();
    EXECUTE format('INSERT INTO %I.%I SELECT ($1).*', TG_TABLE_SCHEMA, TG_TABLE_NAME || '_history') USING OLD;
    NEW.version := OLD.version + 1;
    NEW.valid_from := now();
    NEW.valid_to := NULL;
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    op.execute(VERSION_ROW)
    op.execute(WRITE_HISTORY)
    op.execute(KEEP_HISTORY_EXACT)
    for table in VERSIONED_TABLES:
        op.execute(f"DROP TRIGGER keep_history ON {table}")
        op.execute(f"CREATE TRIGGER keep_history BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION registry_version_row()")
        op.execute(f"CREATE TRIGGER write_history AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows "
                   "FOR EACH STATEMENT EXECUTE FUNCTION registry_write_history()")
    op.create_index("ix_addresses_division_seq", "addresses", ["division_id", "local_seq"], unique=False)
    op.drop_index("ix_addresses_division", table_name="addresses")


def downgrade() -> None:
    op.create_index("ix_addresses_division", "addresses", ["division_id"], unique=False)
    op.drop_index("ix_addresses_division_seq", table_name="addresses")
    for table in VERSIONED_TABLES:
        op.execute(f"DROP TRIGGER write_history ON {table}")
        op.execute(f"DROP TRIGGER keep_history ON {table}")
        op.execute(f"CREATE TRIGGER keep_history BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION registry_keep_history()")
    op.execute(KEEP_HISTORY_0001)
    op.execute("DROP FUNCTION registry_write_history()")
    op.execute("DROP FUNCTION registry_version_row()")
