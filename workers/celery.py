"""Entry module for `celery -A workers worker`: the only place a worker app is created at import."""

from workers.app import create_celery

app = create_celery()
