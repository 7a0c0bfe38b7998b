"""Alembic's environment: the migration runs on the connection (and in the transaction) that
``bot.interfaces.database.Database`` opened and holds the migration lock on."""
from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
