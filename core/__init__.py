"""The ground floor: what every app may import (environment readers, database helpers, logs,
traces, error responses, request metrics, login lockout, OpenAPI and parser helpers, progress
bars). It imports no app, nothing from ``config`` and nothing from ``devstack``."""
