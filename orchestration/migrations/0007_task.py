from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orchestration", "0004_outbox_leases"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxentry",
            name="run_after",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
