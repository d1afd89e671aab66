"""Signals sent by ``accounts.services``, always inside the service's transaction.

``email_verified``
    sender: ``User``; ``user``: the User whose ``email_verified_at`` was just set.
"""

from django.dispatch import Signal

email_verified = Signal()
