"""The overview's chart: per-minute counts grouped into slots, laid out as stacked bars."""

from ingest.console import chart


def test_minutes_fall_into_their_slots_and_the_window_ends_now():
    per_minute = {100: {"processed": 2}, 101: {"dead": 1}, 10: {"processed": 9}}  # minute 10: too old
    bars = chart.slots(per_minute, until=101 * 60 + 30, span_s=600, slot_s=60)
    assert len(bars) == 10
    assert bars[-1].start == 101 * 60
    assert (bars[-2].counts["processed"], bars[-1].counts["dead"]) == (2, 1)
    assert sum(b.total for b in bars) == 3


def test_bars_stack_to_the_peak_and_labels_say_the_count():
    bars = [chart.Slot(0.0, {"processed": 3, "dead": 1}), chart.Slot(60.0, {"processed": 2})]
    c = chart.layout(bars, title="t")
    assert c.peak == 4
    first = [r for r in c.rects if r["x"] == c.rects[0]["x"]]
    assert round(sum(r["h"] for r in first)) == c.plot["bottom"] - c.plot["top"]
    assert {r["label"] for r in c.rects} == {"00:00 processed: 3", "00:00 dead: 1", "00:01 processed: 2"}


def test_labels_are_escaped_in_the_page():
    """The SVG comes out of an autoescaping template: a label cannot inject markup."""
    from flask import Flask

    from ingest.console.views import bp

    app = Flask("t")
    app.register_blueprint(bp)
    c = chart.Chart("<b>x</b>", 10, 10, 1, [], [], {"left": 0, "top": 0, "bottom": 1, "right": 1})
    with app.app_context():
        tpl = app.jinja_env.from_string('{% from "console/_chart.html" import svg %}{{ svg(c) }}')
        html = tpl.render(c=c)
    assert "<b>" not in html
    assert "&lt;b&gt;" in html
