"""Signals sent by ``accounts.services``, always inside the service's transaction.

``user_registered``
    sender: ``User``; ``user``: the new User (email not verified yet);
    ``verification_token``: the email-verification Token to send them (its raw value is
    recomputed by ``accounts.services.token_raw_value``).
``email_verified``
    sender: ``User``; ``user``: the User whose ``email_verified_at`` was just set.
"""

from django.dispatch import Signal

user_registered = Signal()
email_verified = Signal()
