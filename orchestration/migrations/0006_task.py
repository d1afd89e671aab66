from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orchestration", "0005_outbox_trace_context"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="outboxentry",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["fairness_key", "available_at", "id"],
                name="outbox_pending_fair_idx",
            ),
        ),
        migrations.AddField(
            model_name="outboxentry",
            name="run_after",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
