"""Entry module for `celery -A benchmarks.noop_app worker`: the Celery no-op ceiling."""

from benchmarks.ceilings import create_noop_celery

app = create_noop_celery()
