"""Leases for the relay (owner, expiry), and ``available_at`` stamped by the database's
clock rather than the writer's."""

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orchestration", "0003_outbox_drop_namespace"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxentry",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="outboxentry",
            name="lease_owner",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.AlterField(
            model_name="outboxentry",
            name="available_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
        ),
    ]
