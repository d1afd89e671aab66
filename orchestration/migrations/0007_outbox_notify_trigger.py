"""Wake the relay from the database: every INSERT into the outbox sends ``NOTIFY
orchestration_outbox`` (delivered when the inserting transaction commits, dropped on
rollback), so writing a row costs the writer one statement, not two."""

from django.db import migrations

CREATE = """
CREATE FUNCTION orchestration_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orchestration_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER orchestration_outbox_notify
    AFTER INSERT ON orchestration_outboxentry
    FOR EACH STATEMENT EXECUTE FUNCTION orchestration_outbox_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS orchestration_outbox_notify ON orchestration_outboxentry;
DROP FUNCTION IF EXISTS orchestration_outbox_notify();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("orchestration", "0006_task"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
