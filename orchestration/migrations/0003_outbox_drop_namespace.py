"""The relay starts every row in the client's namespace; the column was never read."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("orchestration", "0002_outbox_kind"),
    ]

    operations = [
        migrations.RemoveField(model_name="outboxentry", name="namespace"),
    ]
