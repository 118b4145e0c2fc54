"""doorplates: signing keys, live-plate uniqueness, reports and scan counts.

- `doorplate_keys`: the HMAC secrets that sign QR tokens, by a small key id carried in the token.
  Old keys verify until `retired_at` is set; the secrets never leave the database through the API.
- `doorplates.key_id`: the key a plate's token was signed with, so the printed code is reproducible.
- `uq_doorplates_live`: at most one live (issued/active) plate per address and kind, which makes
  issuing idempotent (INSERT … ON CONFLICT DO NOTHING).
- the replaced_by foreign key becomes deferrable, so a replacement writes one version of the old plate.
- `doorplate_reports`: problem reports from the scan page (no personal data), closed on replacement.
- `doorplate_scans`: scan counts per plate and day (no personal data).
- a partial GiST index on the active facilities, for the scan page's nearest services (KNN).

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE doorplate_keys (
            id smallint PRIMARY KEY CHECK (id > 0),
            secret bytea NOT NULL CHECK (length(secret) >= 16),
            created_at timestamptz NOT NULL DEFAULT now(),
            retired_at timestamptz,
            note text
        )
    """)
    # Appended to both tables so the history trigger's row copy keeps its column order.
    op.execute("ALTER TABLE doorplates ADD COLUMN key_id smallint "
               "CONSTRAINT fk_doorplates_key_id_doorplate_keys REFERENCES doorplate_keys(id)")
    op.execute("ALTER TABLE doorplates_history ADD COLUMN key_id smallint")
    op.execute("ALTER TABLE doorplates ALTER CONSTRAINT fk_doorplates_replaced_by_id_doorplates "
               "DEFERRABLE INITIALLY IMMEDIATE")
    op.execute("CREATE UNIQUE INDEX uq_doorplates_live ON doorplates (address_id, kind) "
               "WHERE status IN ('issued', 'active')")
    op.execute("CREATE INDEX ix_doorplates_replaced_by ON doorplates (replaced_by_id) "
               "WHERE replaced_by_id IS NOT NULL")
    op.execute("""
        CREATE TABLE doorplate_reports (
            id bigserial CONSTRAINT pk_doorplate_reports PRIMARY KEY,
            plate_id bigint NOT NULL CONSTRAINT fk_doorplate_reports_plate_id_doorplates REFERENCES doorplates(id),
            kind text NOT NULL CONSTRAINT ck_doorplate_reports_kind
                CHECK (kind IN ('damaged', 'wrong', 'missing', 'faded')),
            text text CONSTRAINT ck_doorplate_reports_text CHECK (char_length(text) <= 500),
            created_at timestamptz NOT NULL DEFAULT now(),
            status text NOT NULL DEFAULT 'open' CONSTRAINT ck_doorplate_reports_status
                CHECK (status IN ('open', 'closed')),
            closed_at timestamptz,
            closed_reason text,
            closed_by_plate_id bigint CONSTRAINT fk_doorplate_reports_closed_by_plate_id_doorplates
                REFERENCES doorplates(id)
        )
    """)
    op.execute("CREATE INDEX ix_doorplate_reports_plate ON doorplate_reports (plate_id, status)")
    op.execute("CREATE INDEX ix_doorplate_reports_open ON doorplate_reports (created_at) WHERE status = 'open'")
    op.execute("""
        CREATE TABLE doorplate_scans (
            plate_id bigint NOT NULL CONSTRAINT fk_doorplate_scans_plate_id_doorplates REFERENCES doorplates(id),
            day date NOT NULL,
            count integer NOT NULL DEFAULT 0,
            CONSTRAINT pk_doorplate_scans PRIMARY KEY (plate_id, day)
        )
    """)
    op.execute("CREATE INDEX ix_facilities_active_geom ON facilities USING gist (geom) WHERE status = 'active'")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_facilities_active_geom")
    op.execute("DROP TABLE IF EXISTS doorplate_scans")
    op.execute("DROP TABLE IF EXISTS doorplate_reports")
    op.execute("DROP INDEX IF EXISTS ix_doorplates_replaced_by")
    op.execute("DROP INDEX IF EXISTS uq_doorplates_live")
    op.execute("ALTER TABLE doorplates ALTER CONSTRAINT fk_doorplates_replaced_by_id_doorplates NOT DEFERRABLE")
    op.execute("ALTER TABLE doorplates_history DROP COLUMN IF EXISTS key_id")
    op.execute("ALTER TABLE doorplates DROP COLUMN IF EXISTS key_id")
    op.execute("DROP TABLE IF EXISTS doorplate_keys")
