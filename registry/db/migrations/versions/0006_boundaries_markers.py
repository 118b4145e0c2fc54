"""Issue 9: boundary lines and markers (界线, 界桩) as full entities.

- `boundary_lines` gains (appended, on the table and its history, so the history trigger's row
  copy keeps its column order, see 0004):
  `code` (the stable line code, unique among active lines; the rule is in registry.boundaries),
  `length_m` (geodesic length, metres), `neighbour_name` (on the city's outer edge: the
  neighbour where known, else 市界) and `county_line_id` (a township line lying on a county
  line points at it, so the two levels stay one line on the ground).
- `boundary_markers` gains `serial`, `type_letter` (Q single, A/B pair, C/D/E triple),
  `elevation_m`, `left_division_id`, `right_division_id`, `condition` (intact 完好, damaged 损坏,
  worn 字迹不清, missing 丢失, displaced 移位, new 新设) and `photos` (file references);
  `number` is unique among active markers (the rule is registry.markers.marker_number).
- `marker_reference_objects` (方位物): versioned like the other entities (history table and the
  two triggers of 0002), at least three per marker (checked by the derivation, not the schema).

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_LINE_COLUMNS = (
    ("code", "text"),
    ("length_m", "double precision"),
    ("neighbour_name", "text"),
    ("county_line_id", "bigint"),
)
_MARKER_COLUMNS = (
    ("serial", "integer"),
    ("type_letter", "text"),
    ("elevation_m", "double precision"),
    ("left_division_id", "bigint"),
    ("right_division_id", "bigint"),
    ("condition", "text"),
    ("photos", "text[]"),
)
MARKER_CONDITIONS = ("intact", "damaged", "worn", "missing", "displaced", "new")


def upgrade() -> None:
    for table, columns in (("boundary_lines", _LINE_COLUMNS), ("boundary_markers", _MARKER_COLUMNS)):
        for name, kind in columns:
            op.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            op.execute(f"ALTER TABLE {table}_history ADD COLUMN {name} {kind}")
    op.execute("ALTER TABLE boundary_lines ADD CONSTRAINT fk_boundary_lines_county_line_id_boundary_lines "
               "FOREIGN KEY (county_line_id) REFERENCES boundary_lines(id)")
    op.execute("ALTER TABLE boundary_lines ADD CONSTRAINT ck_boundary_lines_level "
               "CHECK (level IN ('county', 'township'))")
    op.execute("CREATE UNIQUE INDEX uq_boundary_lines_code_active ON boundary_lines (code) WHERE status = 'active'")
    op.execute("CREATE INDEX ix_boundary_lines_left ON boundary_lines (left_division_id)")
    op.execute("CREATE INDEX ix_boundary_lines_right ON boundary_lines (right_division_id)")

    op.execute("ALTER TABLE boundary_markers ADD CONSTRAINT ck_boundary_markers_type_letter "
               "CHECK (type_letter IN ('Q', 'A', 'B', 'C', 'D', 'E'))")
    conditions = ", ".join(f"'{c}'" for c in MARKER_CONDITIONS)
    op.execute(f"ALTER TABLE boundary_markers ADD CONSTRAINT ck_boundary_markers_condition "
               f"CHECK (condition IN ({conditions}))")
    op.execute("ALTER TABLE boundary_markers ADD CONSTRAINT ck_boundary_markers_serial "
               "CHECK (serial BETWEEN 1 AND 999)")
    op.execute("ALTER TABLE boundary_markers ADD CONSTRAINT fk_boundary_markers_left_division_id_divisions "
               "FOREIGN KEY (left_division_id) REFERENCES divisions(id)")
    op.execute("ALTER TABLE boundary_markers ADD CONSTRAINT fk_boundary_markers_right_division_id_divisions "
               "FOREIGN KEY (right_division_id) REFERENCES divisions(id)")
    op.execute("CREATE UNIQUE INDEX uq_boundary_markers_number_active ON boundary_markers (number) "
               "WHERE status = 'active'")
    op.execute("CREATE INDEX ix_boundary_markers_line ON boundary_markers (boundary_line_id)")

    op.execute("""
        CREATE TABLE marker_reference_objects (
            id bigserial CONSTRAINT pk_marker_reference_objects PRIMARY KEY,
            marker_id bigint NOT NULL
                CONSTRAINT fk_marker_reference_objects_marker_id_boundary_markers REFERENCES boundary_markers(id),
            seq smallint NOT NULL CONSTRAINT ck_marker_reference_objects_seq CHECK (seq > 0),
            name text NOT NULL,
            kind text,
            bearing_deg double precision NOT NULL
                CONSTRAINT ck_marker_reference_objects_bearing CHECK (bearing_deg >= 0 AND bearing_deg < 360),
            distance_m double precision NOT NULL
                CONSTRAINT ck_marker_reference_objects_distance CHECK (distance_m > 0),
            status text NOT NULL DEFAULT 'active',
            geom geometry(POINT, 4490),
            version integer NOT NULL DEFAULT 1,
            valid_from timestamptz NOT NULL DEFAULT now(),
            valid_to timestamptz,
            change_set_id bigint
                CONSTRAINT fk_marker_reference_objects_change_set_id_change_sets REFERENCES change_sets(id),
            source text
        )
    """)
    op.execute("CREATE UNIQUE INDEX uq_marker_reference_objects_marker_seq ON marker_reference_objects "
               "(marker_id, seq) WHERE status = 'active'")
    op.execute("CREATE INDEX ix_marker_reference_objects_geom ON marker_reference_objects USING gist (geom)")
    # Versioned like the tables of 0001/0002: history table, row trigger and statement trigger.
    op.execute("CREATE TABLE marker_reference_objects_history (LIKE marker_reference_objects INCLUDING DEFAULTS)")
    op.execute("ALTER TABLE marker_reference_objects_history ADD PRIMARY KEY (id, version)")
    op.execute("CREATE INDEX ix_marker_reference_objects_history_period "
               "ON marker_reference_objects_history (valid_from, valid_to)")
    op.execute("CREATE TRIGGER keep_history BEFORE UPDATE OR DELETE ON marker_reference_objects "
               "FOR EACH ROW EXECUTE FUNCTION registry_version_row()")
    op.execute("CREATE TRIGGER write_history AFTER UPDATE ON marker_reference_objects "
               "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION registry_write_history()")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS marker_reference_objects_history")
    op.execute("DROP TABLE IF EXISTS marker_reference_objects")
    op.execute("DROP INDEX IF EXISTS ix_boundary_markers_line")
    op.execute("DROP INDEX IF EXISTS uq_boundary_markers_number_active")
    op.execute("DROP INDEX IF EXISTS ix_boundary_lines_right")
    op.execute("DROP INDEX IF EXISTS ix_boundary_lines_left")
    op.execute("DROP INDEX IF EXISTS uq_boundary_lines_code_active")
    op.execute("ALTER TABLE boundary_lines DROP CONSTRAINT IF EXISTS ck_boundary_lines_level")
    for table, columns in (("boundary_markers", _MARKER_COLUMNS), ("boundary_lines", _LINE_COLUMNS)):
        for name, _ in reversed(columns):
            op.execute(f"ALTER TABLE {table}_history DROP COLUMN IF EXISTS {name}")
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {name}")
