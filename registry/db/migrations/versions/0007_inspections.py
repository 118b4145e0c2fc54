"""Issue 9: inspection rounds, records and proposed change sets with diffs.

- `change_sets`: who applied (`applied_by`) and who rejected when (`rejected_by`, `rejected_at`),
  so a reviewed change set records proposer (author), approver, applier or rejecter.
- `inspection_rounds`: the round's number (4 for 第四轮, unique), its years and its scope.
- `inspection_records`: one record per line or marker and package: the date, the two sides'
  teams, the condition found, the measured position (`geom`), the reference objects re-measured,
  notes and the joint record sheet (联检记录表) reference; `change_set_id` is the package's
  change set (records are written when it is applied).

Neither inspection table is versioned (no history trigger): a record is an observation made on
a day, never edited; a new inspection writes a new record.

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE change_sets ADD COLUMN IF NOT EXISTS applied_by text")
    op.execute("ALTER TABLE change_sets ADD COLUMN IF NOT EXISTS rejected_by text")
    op.execute("ALTER TABLE change_sets ADD COLUMN IF NOT EXISTS rejected_at timestamptz")
    op.execute("CREATE INDEX IF NOT EXISTS ix_change_sets_kind_status ON change_sets (kind, status)")

    op.execute("ALTER TABLE inspection_rounds ADD COLUMN number smallint")
    op.execute("ALTER TABLE inspection_rounds ADD COLUMN year_to smallint")
    op.execute("ALTER TABLE inspection_rounds ADD CONSTRAINT ck_inspection_rounds_status "
               "CHECK (status IN ('open', 'closed'))")
    op.execute("CREATE UNIQUE INDEX uq_inspection_rounds_number ON inspection_rounds (number)")

    op.execute("ALTER TABLE inspection_records ADD COLUMN change_set_id bigint "
               "CONSTRAINT fk_inspection_records_change_set_id_change_sets REFERENCES change_sets(id)")
    op.execute("ALTER TABLE inspection_records ADD COLUMN left_team text")
    op.execute("ALTER TABLE inspection_records ADD COLUMN right_team text")
    op.execute("ALTER TABLE inspection_records ADD COLUMN condition text")
    op.execute("ALTER TABLE inspection_records ADD COLUMN reference_measurements jsonb "
               "NOT NULL DEFAULT '[]'::jsonb")
    op.execute("ALTER TABLE inspection_records ADD COLUMN sheet_ref text")
    op.execute("CREATE INDEX ix_inspection_records_change_set ON inspection_records (change_set_id)")
    op.execute("CREATE INDEX ix_inspection_records_marker ON inspection_records (marker_id)")
    op.execute("CREATE INDEX ix_inspection_records_line ON inspection_records (boundary_line_id)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_inspection_records_line")
    op.execute("DROP INDEX IF EXISTS ix_inspection_records_marker")
    op.execute("DROP INDEX IF EXISTS ix_inspection_records_change_set")
    for col in ("sheet_ref", "reference_measurements", "condition", "right_team", "left_team", "change_set_id"):
        op.execute(f"ALTER TABLE inspection_records DROP COLUMN IF EXISTS {col}")
    op.execute("DROP INDEX IF EXISTS uq_inspection_rounds_number")
    op.execute("ALTER TABLE inspection_rounds DROP CONSTRAINT IF EXISTS ck_inspection_rounds_status")
    op.execute("ALTER TABLE inspection_rounds DROP COLUMN IF EXISTS year_to")
    op.execute("ALTER TABLE inspection_rounds DROP COLUMN IF EXISTS number")
    op.execute("DROP INDEX IF EXISTS ix_change_sets_kind_status")
    op.execute("ALTER TABLE change_sets DROP COLUMN IF EXISTS rejected_at")
    op.execute("ALTER TABLE change_sets DROP COLUMN IF EXISTS rejected_by")
    op.execute("ALTER TABLE change_sets DROP COLUMN IF EXISTS applied_by")
