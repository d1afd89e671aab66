"""Membership moves to the ``tenants`` app (its table, ``accounts_membership``, stays where
it is: a state-only move); ``Token.tenant``, which nothing ever set, is dropped. After this,
``accounts`` has no reference to ``tenants`` at all."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_token_nonce"),
    ]

    operations = [
        migrations.RemoveField(model_name="token", name="tenant"),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Membership")],
            database_operations=[],
        ),
    ]
