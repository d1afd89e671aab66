"""Tell watchers at once when a fleet run changes: every UPDATE of a ``FleetRun`` row sends
``NOTIFY tenants_fleet_run`` with the run's id (delivered at commit), so that
``migrate_fleet --wait`` sees a batch recorded or the run's end without polling for it."""

from django.db import migrations

CREATE = """
CREATE FUNCTION tenants_fleet_run_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenants_fleet_run', NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER tenants_fleet_run_notify
    AFTER UPDATE ON tenants_fleetrun
    FOR EACH ROW EXECUTE FUNCTION tenants_fleet_run_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS tenants_fleet_run_notify ON tenants_fleetrun;
DROP FUNCTION IF EXISTS tenants_fleet_run_notify();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0007_fleet_run"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
