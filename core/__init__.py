"""The shared core: what the intake and the workers both stand on.

Settings, structured logs, the event store, task names with the broker's message format, the example corpus
and replay. It imports neither `ingest` (the web intake) nor `workers`: imports run intake -> core <- workers.
"""
