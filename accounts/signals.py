"""Signals sent by ``accounts.services``, always inside the service's transaction.

``email_verified``
    sender: ``User``; ``user``: the User whose ``email_verified_at`` was just set.
``verification_email_requested``
    sender: ``User``; ``user``: a User whose email is not verified yet;
    ``verification_token``: the usable email-verification Token to send them again (its
    raw value is recomputed by ``token_raw_value``).
"""

from django.dispatch import Signal

email_verified = Signal()
verification_email_requested = Signal()
