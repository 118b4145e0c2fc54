"""Alembic environment: online migrations only (the registry always has a live database)."""
from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from registry.db.tables import metadata

config = context.config


def _include_object(obj, name, type_, reflected, compare_to):
    # History tables, PostGIS's own tables and trigger-made objects are managed by hand.
    if type_ == "table" and (name.endswith("_history") or name == "spatial_ref_sys"):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def run_migrations_online() -> None:
    connectable = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            include_object=_include_object,
            process_revision_directives=alembic_helpers.writer,
            render_item=alembic_helpers.render_item,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
