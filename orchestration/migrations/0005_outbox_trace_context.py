"""The trace context of the transaction that wrote an outbox row, for the relay to continue."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orchestration", "0004_outbox_leases"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxentry",
            name="trace_context",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
