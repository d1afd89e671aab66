"""Signals sent by ``accounts.services``, always inside the service's transaction.

``email_verified``
    sender: ``User``; ``user``: the User whose ``email_verified_at`` was just set.
``verification_email_requested``
    sender: ``User``; ``user``: a User whose email is not verified yet;
    ``verification_token``: the usable email-verification Token to send them again (its
    raw value is recomputed by ``token_raw_value``).
``password_reset_requested``
    sender: ``User``; ``user``: an active User who asked for a password reset;
    ``token``: the new, usable password-reset Token to email them (its raw value is
    recomputed by ``token_raw_value``). Also sent for an address without an account, with
    an unsaved ``user`` and a token that are rolled back with a savepoint right after (so
    that both requests do the same work): receivers act through the transaction only, as
    every receiver here must.
``email_change_requested``
    sender: ``User``; ``user``: the User whose email is to change; ``email_change``: the
    ``EmailChange`` row (its ``token`` is emailed to ``new_email`` to confirm it, and
    ``old_email`` is told).
"""

from django.dispatch import Signal

email_verified = Signal()
verification_email_requested = Signal()
password_reset_requested = Signal()
email_change_requested = Signal()
