"""The relationship memory: decisions, alerts with a lifecycle, and runs, in a SQL database.

SQLite by default (``crm_state.db`` in the working directory), PostgreSQL by URL; the
same code and tests run on both. See :mod:`crm_modes.state.store`.
"""
