"""The benchmark's report: which targets it checks and how, from made-up numbers (no process started)."""

import argparse
import os

import pytest

from benchmarks.run import (
    TINY,
    _sizes,
    _tree_cpu,
    batch_env,
    ceiling,
    intake_report,
    pipeline_report,
    report,
    sweep_report,
)


def _intake(pairs):
    """Loadgen results for (intake, ceiling) req/s pairs, one pair per run."""

    def run(rps):
        return {"rps": rps, "p50_ms": 1.0, "p99_ms": 5.0}

    return {
        "intake": {"saturation": [run(i) for i, _ in pairs], "half": [run(i / 2) for i, _ in pairs]},
        "ceiling": {"saturation": [run(c) for _, c in pairs], "half": [run(c / 2) for _, c in pairs]},
    }


def _e2e(saturation, p99, *, p99_of_a=400.0, rate_of_a=None):
    """end_to_end()'s result: saturation (processed ev/s), p99 at half of it, and p99 at half of (a)."""
    return {
        "saturation": {"processed_rps": saturation, "accepted_rps": saturation * 1.3},
        "half": {"count": 100, "rate": saturation / 2, "p50_ms": 5.0, "p99_ms": p99},
        "half_of_a": {"count": 100, "rate": rate_of_a or saturation, "p50_ms": 50.0, "p99_ms": p99_of_a},
    }


def _report(intake, *, upd2=900.0, pub2=600.0, noop2=1000.0, p99=50.0, e2e_sat=700.0):
    pipe = {
        "noop_1": [600.0],
        "noop_2": [noop2],
        "noop_2_unbatched": [noop2 * 0.9],
        "updated_1": [upd2 / 1.8],
        "updated_2": [upd2],
        "published_2": [pub2],
        "published_2_aiosmtpd": [pub2 / 2],
    }
    lat = _e2e(e2e_sat, p99, rate_of_a=upd2 / 2)
    return report(intake, pipe, lat, {50: 1000, 200: 1010}, TINY)


class TestReport:
    def test_the_intake_target_holds_only_when_every_run_meets_it(self):
        """A median of 0.9x with one run at 0.75x misses: the issue asks for 0.8x in every run."""
        table, _ = _report(_intake([(900, 1000), (750, 1000), (950, 1000)]))
        row = next(line for line in table.splitlines() if "in every run" in line)
        assert "0.90x / 0.75x / 0.95x" in row
        assert row.endswith("**missed** |")
        table, _ = _report(_intake([(900, 1000), (800, 1000), (950, 1000)]))
        row = next(line for line in table.splitlines() if "in every run" in line)
        assert row.endswith("| met |")

    def test_each_run_ratio_is_listed(self):
        """The per-run table pairs run i of the intake with run i of the ceiling."""
        text = intake_report(_intake([(900, 1000), (1500, 2000)]))
        assert "| 1 | 900 | 1000 | 0.90x |" in text
        assert "| 2 | 1500 | 2000 | 0.75x |" in text
        assert "| 1 | 900 | 1000 | 0.90x | not measured |  |" in text

    def test_each_run_gives_the_servers_cpu_per_request(self):
        """The gunicorn CPU per request of each server, and the ratio it alone would give."""
        intake = _intake([(900, 1000)])
        intake["intake"]["saturation"][0]["server_cpu_us"] = 700.0
        intake["ceiling"]["saturation"][0]["server_cpu_us"] = 525.0
        assert "| 1 | 900 | 1000 | 0.90x | 700 / 525 µs | 0.75x |" in intake_report(intake)

    def test_the_wsgi_ceiling_is_listed_beside_when_measured(self):
        """The bare WSGI ceiling's rate, the intake's ratio to it and its CPU, in the same row."""
        intake = _intake([(900, 1000)])
        intake["wsgi_ceiling"] = {"saturation": [{"rps": 1200.0, "server_cpu_us": 480.0}]}
        assert "| 1 | 900 | 1000 | 0.90x | not measured |  | 1200 | 0.75x | 480 µs |" in intake_report(intake)

    @pytest.mark.parametrize(
        ("upd2", "pub2", "p99", "missed"),
        [
            (900.0, 600.0, 100.0, set()),
            (899.0, 600.0, 100.0, {"(a)"}),
            (900.0, 599.0, 100.0, {"(b)"}),
            (900.0, 600.0, 100.1, {"end-to-end"}),
        ],
    )
    def test_the_issue_targets(self, upd2, pub2, p99, missed):
        """(a) ≥ 0.9x and (b) ≥ 0.6x of the no-op ceiling; end-to-end p99 ≤ 100 ms at half of the
        end-to-end saturation (whatever the p99 at half of (a), listed but not the target)."""
        table, ok = _report(_intake([(900, 1000)]), upd2=upd2, pub2=pub2, p99=p99)
        got = {
            key
            for line in table.splitlines()
            if line.endswith("**missed** |")
            for key in ("(a)", "(b)", "end-to-end")
            if line.split("|")[1].strip().startswith(("pipeline " + key, key))
        }
        assert got == missed
        assert ok == (not missed)
        assert "at half of the end-to-end saturation ≤ 100 ms" in table
        assert "at 350.0 ev/s (of 700 ev/s processed)" in table
        assert f"half of (a)'s saturation, {upd2 / 2} ev/s" in table
        assert "p99 400.0 ms" in table

    def test_the_end_to_end_rows(self):
        """The saturation of intake and workers together, processed and accepted, then both latencies."""
        table, _ = _report(_intake([(900, 1000)]), e2e_sat=780.0)
        assert "| 780 events/s processed (1014 req/s accepted) |" in table
        assert "at half of that, 390.0 ev/s | p50 5.0 ms, p99 50.0 ms (100 events) |" in table

    def test_the_ceiling_is_the_faster_no_op(self):
        """The no-op runs with the workers' batch prefetch and with Celery's prefetch of 1: the ratio is
        taken to the higher, so a prefetch that slows the no-op cannot flatter (a) and (b)."""
        pipe = {"noop_2": [800.0, 900.0, 850.0], "noop_2_unbatched": [1000.0, 950.0, 1100.0]}
        assert ceiling(pipe) == 1000.0
        assert ceiling({"noop_2": [1200.0], "noop_2_unbatched": [1000.0]}) == 1200.0


class TestSweep:
    def test_the_rows_carry_the_worker_environment(self):
        """A row sets WORKER_BATCH_SIZE, and WORKER_BATCH_WAIT_MS only when one was asked for."""
        assert batch_env(16, None) == {"WORKER_BATCH_SIZE": "16"}
        assert batch_env(1, 2.5) == {"WORKER_BATCH_SIZE": "1", "WORKER_BATCH_WAIT_MS": "2.5"}

    def test_the_table_gives_throughput_ratio_and_latency(self):
        """Each batch size: (a) with its runs, the no-op with the same environment, and p99 against 100 ms."""
        rows = [
            {
                "batch_size": 1,
                "updated_2": [500.0, 520.0, 510.0],
                "noop_2": [1000.0],
                "end_to_end": _e2e(510.0, 40.0),
            },
            {
                "batch_size": 64,
                "updated_2": [950.0],
                "noop_2": [1000.0],
                "end_to_end": _e2e(950.0, 140.0),
            },
        ]
        text = sweep_report(rows, 5.0)
        assert "WORKER_BATCH_WAIT_MS` 5 ms" in text
        lines = text.splitlines()
        assert (
            "| 1 | 510 (500, 520, 510) | 1000 | 0.51x | 510 ev/s | "
            "255.0 ev/s: p50 5.0 ms, p99 40.0 ms | met |" in lines
        )
        # Against the best no-op of the table, not the row's own.
        rows[1]["noop_2"] = [800.0]
        assert "| 64 | 950 (950) | 800 | 0.95x |" in sweep_report(rows, None)
        assert (
            "| 64 | 950 (950) | 1000 | 0.95x | 950 ev/s | 475.0 ev/s: p50 5.0 ms, p99 140.0 ms | **missed** |"
            in lines
        )
        assert "the workers' default" in sweep_report(rows, None)

    @pytest.mark.parametrize("text", ["", "1,x", "0,4", "-1"])
    def test_bad_batch_sizes_are_refused(self, text):
        """--batch-sizes takes positive integers only."""
        with pytest.raises(argparse.ArgumentTypeError):
            _sizes(text)
        assert _sizes("1,4,16") == (1, 4, 16)


class TestPipelineOnly:
    def test_the_table_gives_rates_ratios_and_cpu_per_event(self):
        """(a) and (b) against the faster no-op, every run's rate and CPU per event (µs)."""
        pipe = {
            "noop_2": [1000.0, 1100.0],
            "noop_2_unbatched": [1200.0, 1300.0],
            "updated_2": [1100.0, 1150.0],
            "published_2": [700.0, 780.0],
        }
        cpu = {name: [0.0009, 0.0011] for name in pipe}
        cpu["published_2"] = [0.0015, 0.0016]
        lines = pipeline_report(pipe, cpu).splitlines()
        assert "| noop_2_unbatched | 1250 (1200, 1300) |  | 900, 1100 |" in lines
        assert "| updated_2 | 1125 (1100, 1150) | 0.90x | 900, 1100 |" in lines
        assert "| published_2 | 740 (700, 780) | 0.59x | 1500, 1600 |" in lines

    def test_cpu_of_a_process_tree(self):
        """This process's CPU is counted; a process that is gone counts nothing."""
        own = _tree_cpu([os.getpid()], children=False)
        assert own > 0
        assert _tree_cpu([2**22 + 12345]) == 0.0
