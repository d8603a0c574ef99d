"""Alembic environment of the state store: runs on the connection that `store.upgrade` passes."""

from alembic import context

context.configure(
    connection=context.config.attributes["connection"],
    version_table="crm_state_version",  # not MLflow's alembic_version, should both share a database
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
