"""The whole example corpus through the real intake and worker: no false rejections."""

import pytest

from core import examples
from tests.support import signed, wait_for

pytestmark = pytest.mark.integration


def route(name, doc):
    """Distribution webhooks (and designer bodies) arrive on a distribution endpoint of their own."""
    source = doc.get("source") if isinstance(doc, dict) else None
    is_distribution = isinstance(source, dict) and source.get("object") == "distribution"
    return (
        "/webhooks/voucherify/distribution"
        if is_distribution or not examples.is_envelope(doc)
        else ("/webhooks/voucherify")
    )


def test_every_example_ends_processed_or_ignored(intake, e2e_store):
    """Each of the example payloads, signed and posted, ends processed or ignored: none invalid."""
    acks = {}
    for name in examples.names():
        raw = examples.load(name)
        doc = raw if name.endswith("-3") else examples.example_envelope(name)
        body, headers = signed(doc)
        resp = intake.post(route(name, doc), data=body, headers=headers)
        assert resp.status_code == 202, (name, resp.json)
        acks[name] = resp.json["id"]
    assert len(acks) == len(examples.names()) >= 76

    terminal = {"processed", "ignored", "invalid", "dead"}

    def all_settled():
        docs = {n: e2e_store.document(i) for n, i in acks.items()}
        return docs if all(d["status"] in terminal for d in docs.values()) else None

    docs = wait_for(all_settled, timeout=60, what="every example event to settle")
    bad = {
        n: (d["status"], d["errors"]) for n, d in docs.items() if d["status"] not in ("processed", "ignored")
    }
    assert bad == {}
