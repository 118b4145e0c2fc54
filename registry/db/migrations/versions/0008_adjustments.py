"""Issue 9: division adjustments (区划调整), successors of abolished divisions, and valid time.

- `division_adjustments`: one row per adjustment (merge, split, rename, recode, transfer) with
  its change set, the approval document (批复文号) and the date it took effect, or, where the
  document is unknown, the date it is known to be in force by (an upper bound, said as such);
  `details` keeps what changed (divisions, old and new names and codes, villages moved).
- `division_successors`: the division that took over an abolished one (a merge, a split that
  ends the old township), so its old code answers with the successor.
- Valid time. The history triggers stamped every new version with `now()`. An adjustment takes
  effect on a date of its own (possibly known only as an upper bound), so that "what did the
  registry say on date D" follows the adjustment, not the moment it was typed in: a writer may
  set the transaction-local setting `registry.valid_time` (a timestamptz); versions written while
  it is set start then (and the versions they replace end then), never before the replaced
  version began. Unset (the normal case), the triggers behave exactly as before.

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_VALID_TIME = "coalesce(nullif(current_setting('registry.valid_time', true), '')::timestamptz, now())"

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


def _version_row(valid_from: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION registry_version_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    same record;
BEGIN
{_REFUSE}
    NEW.version := OLD.version + 1;
    NEW.valid_from := {valid_from};
    NEW.valid_to := NULL;
    RETURN NEW;
END $$;
"""


def _write_history(valid_to: str) -> str:
    literal = "'" + valid_to.replace("'", "''") + "'"  # the expression, as a string literal in the body
    return f"""
CREATE OR REPLACE FUNCTION registry_write_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    vals text;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
           string_agg(CASE WHEN attname = 'valid_to' THEN {literal} ELSE quote_ident(attname) END, ', '
                      ORDER BY attnum)
      INTO cols, vals
      FROM pg_attribute WHERE attrelid = TG_RELID AND attnum > 0 AND NOT attisdropped;
    EXECUTE format('INSERT INTO %I.%I (%s) SELECT %s FROM old_rows',
                   TG_TABLE_SCHEMA, TG_TABLE_NAME || '_history', cols, vals);
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE division_adjustments (
            id bigserial CONSTRAINT pk_division_adjustments PRIMARY KEY,
            change_set_id bigint NOT NULL
                CONSTRAINT fk_division_adjustments_change_set_id_change_sets REFERENCES change_sets(id),
            kind text NOT NULL CONSTRAINT ck_division_adjustments_kind
                CHECK (kind IN ('merge', 'split', 'rename', 'recode', 'transfer')),
            approval_ref text,
            effective_on date,
            known_in_force_by date,
            note text,
            details jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT ck_division_adjustments_dated CHECK (effective_on IS NOT NULL OR known_in_force_by IS NOT NULL)
        )
    """)
    op.execute("CREATE INDEX ix_division_adjustments_change_set ON division_adjustments (change_set_id)")
    op.execute("""
        CREATE TABLE division_successors (
            division_id bigint NOT NULL
                CONSTRAINT fk_division_successors_division_id_divisions REFERENCES divisions(id),
            successor_id bigint NOT NULL
                CONSTRAINT fk_division_successors_successor_id_divisions REFERENCES divisions(id),
            adjustment_id bigint NOT NULL
                CONSTRAINT fk_division_successors_adjustment_id_division_adjustments
                REFERENCES division_adjustments(id),
            CONSTRAINT pk_division_successors PRIMARY KEY (division_id, successor_id)
        )
    """)
    op.execute(_version_row(f"greatest({_VALID_TIME}, OLD.valid_from)"))
    op.execute(_write_history(f"greatest({_VALID_TIME}, valid_from)"))


def downgrade() -> None:
    op.execute(_write_history("now()"))
    op.execute(_version_row("now()"))
    op.execute("DROP TABLE IF EXISTS division_successors")
    op.execute("DROP TABLE IF EXISTS division_adjustments")
