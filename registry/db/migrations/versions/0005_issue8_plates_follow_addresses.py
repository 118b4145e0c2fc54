"""Issue 8: doorplates follow their address's lifecycle.

- `doorplates.status` gains `suspended`: the plate of an address that has been retired. The plate
  and its printed token stay valid (the QR keeps verifying), but the scan page says plainly that
  the address is retired; a later load that reactivates the address brings the plate back to the
  status it had (`registry.doorplates.follow_addresses`). Suspended plates are not live: they are
  not printed, activated or replaced (revoking one is allowed).

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE doorplates DROP CONSTRAINT ck_doorplates_status")
    op.execute("ALTER TABLE doorplates ADD CONSTRAINT ck_doorplates_status "
               "CHECK (status IN ('issued','active','suspended','replaced','revoked'))")


def downgrade() -> None:
    # A suspended plate goes back to `issued` (its last live status is in doorplates_history).
    op.execute("ALTER TABLE doorplates DISABLE TRIGGER keep_history")
    op.execute("UPDATE doorplates SET status = 'issued' WHERE status = 'suspended'")
    op.execute("ALTER TABLE doorplates ENABLE TRIGGER keep_history")
    op.execute("ALTER TABLE doorplates DROP CONSTRAINT ck_doorplates_status")
    op.execute("ALTER TABLE doorplates ADD CONSTRAINT ck_doorplates_status "
               "CHECK (status IN ('issued','active','replaced','revoked'))")
