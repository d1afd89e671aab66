"""Every workflow of the project, one module each (re-exported here)."""

WORKFLOWS: list[type] = []
