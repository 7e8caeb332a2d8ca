"""The workers: load, validate, dispatch, act. Entry point: `celery -A workers worker` (workers/celery.py)."""
