"""Tenant schemas: create (from the template, or by migrations), migrate, drop.

Fast path. Running every migration for each new tenant grows with the app's history.
The project keeps one schema, ``TENANT_TEMPLATE_SCHEMA``, migrated like a tenant (never
served: no tenant row or domain points at it) and stores a dump of it — DDL and rows,
schema name abstracted — in ``SchemaTemplate``. A new schema is that dump replayed in one
transaction under the new name: one round trip, no per-call function set-up (django-tenants'
``clone_schema`` re-creates a 4,500-line plpgsql function on every call). When the stored
dump was taken at other migrations than the code has now (another list, or a migration file
edited since), when it still names the template schema after the rewrite (a new tenant would
point at the template), or when none is stored, creation falls back to running migrations.

One module per job; import from the module that does it:

- ``migration_state``: which migrations the code defines and which a schema records.
- ``lock``: the per-schema lock that serialises migrating and dropping a schema.
- ``migrate``: bringing one schema to the code's migrations.
- ``create``: a new schema, from the template or by migrations.
- ``drop``: a schema dropped with everything in it.
- ``snapshot``: the template schema and its stored, name-independent dump.
- ``parallel_build``: the dump replayed in one transaction, or split over several connections.
- ``quiet_build``: the dump replayed in small commits (pool refills).
- ``scratch``: the scratch schemas builds make, rename, and drop when left behind.
- ``sql_statements``: a pg_dump script split into its statements.
"""
