"""Issue 12: place names by the national rules, and the heritage catalogue.

- `place_names` gains (appended, on the table and its history, so the history trigger's row copy
  keeps its column order, see 0004): `specific_part`/`generic_part` (专名/通名), `romanized` (by
  the 1984 rules, registry.text.romanization), `romanization_override` (a per-name correction that
  wins over the rules; being a column, every change of it is a version in the history),
  `approved_by` (the approving body), `approved_on`, `approval_ref` (批复文号).
- `heritage_items` gains `catalogue` (the list it is on, e.g. 浙江省千年古镇（古村落）地名文化遗产),
  `batch` (第二批), `listed_on`, `listing_document`, `description`, `protection` (protection
  measures), `photos` (file references), `source_url`, `certainty` (how sure the fact is, in the
  source's words) and `synthetic` (true for generated items: never mistaken for real facts).
  `level` also admits `candidate` (sourced, not on an official list).

Revision ID: 0009
Revises: 0008
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PLACE_COLUMNS = (
    ("specific_part", "text"),
    ("generic_part", "text"),
    ("romanized", "text"),
    ("romanization_override", "text"),
    ("approved_by", "text"),
    ("approved_on", "date"),
    ("approval_ref", "text"),
)
HERITAGE_COLUMNS = (
    ("catalogue", "text"),
    ("batch", "text"),
    ("listed_on", "date"),
    ("listing_document", "text"),
    ("description", "text"),
    ("protection", "text"),
    ("photos", "text[]"),
    ("source_url", "text"),
    ("certainty", "text"),
    ("synthetic", "boolean NOT NULL DEFAULT false"),
)


def upgrade() -> None:
    for table, columns in (("place_names", PLACE_COLUMNS), ("heritage_items", HERITAGE_COLUMNS)):
        for name, kind in columns:
            op.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            op.execute(f"ALTER TABLE {table}_history ADD COLUMN {name} {kind}")
    op.execute("ALTER TABLE heritage_items DROP CONSTRAINT ck_heritage_items_level")
    op.execute("ALTER TABLE heritage_items ADD CONSTRAINT ck_heritage_items_level "
               "CHECK (level IN ('county','city','province','national','candidate'))")


def downgrade() -> None:
    op.execute("UPDATE heritage_items SET level = 'county' WHERE level = 'candidate'")
    op.execute("ALTER TABLE heritage_items DROP CONSTRAINT ck_heritage_items_level")
    op.execute("ALTER TABLE heritage_items ADD CONSTRAINT ck_heritage_items_level "
               "CHECK (level IN ('county','city','province','national'))")
    for table, columns in (("place_names", PLACE_COLUMNS), ("heritage_items", HERITAGE_COLUMNS)):
        for name, _ in reversed(columns):
            op.execute(f"ALTER TABLE {table}_history DROP COLUMN {name}")
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
