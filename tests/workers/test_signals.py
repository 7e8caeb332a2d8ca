import io
import json
import logging

import pytest

from core import examples, logs
from core.logs import JsonFormatter
from core.queue import PROCESS_EVENT, RECONCILE
from tests.support import signed
from workers import dispatch, signals
from workers.actions import ActionResult
from workers.pipeline import process_event


class Named:
    def __init__(self, name):
        self.name = name


@pytest.fixture(autouse=True)
def _clean_context():
    logs.clear()
    yield
    logs.clear()


@pytest.fixture
def captured():
    """Lines the root logger writes while the test runs, parsed."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(x) for x in buf.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


class TestTaskContext:
    def test_prerun_binds_task_and_event(self):
        """process_event's lines carry the task id, the task name and the event id."""
        signals.bind_task(task_id="t-1", task=Named(PROCESS_EVENT), args=("evt_1",))
        assert logs.bound() == {"task_id": "t-1", "task": PROCESS_EVENT, "event_id": "evt_1"}

    def test_other_tasks_bind_no_event(self):
        signals.bind_task(task_id="t-2", task=Named(RECONCILE), args=())
        assert logs.bound() == {"task_id": "t-2", "task": RECONCILE}

    def test_postrun_forgets_everything(self):
        """A pool process runs task after task: nothing of one leaks into the next one's lines."""
        signals.bind_task(task_id="t-1", task=Named(PROCESS_EVENT), args=("evt_1",))
        logs.bind(action="notify_customer")
        signals.unbind_task()
        assert logs.bound() == {}

    def test_prerun_drops_a_previous_tasks_leftovers(self):
        """Regression guard: a task killed before postrun must not lend its event id to the next task."""
        signals.bind_task(task_id="t-1", task=Named(PROCESS_EVENT), args=("evt_1",))
        signals.bind_task(task_id="t-2", task=Named(RECONCILE), args=())
        assert "event_id" not in logs.bound()


class TestPipelineContext:
    def test_action_lines_say_which_event_and_action(self, runtime, store, captured):
        """A line an action logs by itself carries the event id, event type and action name."""

        def chatty(ctx):
            logging.getLogger("workers.actions.chatty").info("talking to the downstream")
            return ActionResult("succeeded")

        runtime.actions = {dispatch.NOTIFY_CUSTOMER: chatty}
        body, _ = signed(examples.example_envelope("publication.succeeded"))
        event_id, _ = store.accept(body, dedup_key="k1", headers={}, secret="secret:0")
        assert process_event(event_id, runtime) == "processed"
        (line,) = [x for x in captured() if x["logger"] == "workers.actions.chatty"]
        assert line["event_id"] == event_id
        assert line["event_type"] == "publication.succeeded"
        assert line["action"] == dispatch.NOTIFY_CUSTOMER
        assert logs.bound() == {}


def test_celerys_signal_handler_notices_are_json(settings, tmp_path):
    """Regression: "worker: Warm shutdown (MainProcess)" went out as plain text past logging and --quiet."""
    from celery.apps import worker as celery_worker

    signals.connect(settings)
    path = tmp_path / "out"
    with open(path, "w") as f:
        celery_worker.safe_say("worker: Warm shutdown (MainProcess)", f)
    (line,) = path.read_text().splitlines()
    assert json.loads(line)["msg"] == "worker: Warm shutdown (MainProcess)"
