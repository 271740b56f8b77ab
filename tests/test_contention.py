"""benchmarks/contention.py without measuring anything: what it refuses, its busy processes, its table."""

from __future__ import annotations

import contextlib
import os

import pytest

from benchmarks import contention


def test_without_the_bench_extra_it_names_what_is_missing_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(contention.importlib.util, "find_spec", lambda name: None)
    assert contention.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tensorflow-cpu, keras" in err and "--mnistlab-only" in err


@pytest.mark.parametrize("loads", ["1,2", "0,-1"])
def test_loads_must_start_quiet(loads, capsys):
    assert contention.main(["--mnistlab-only", "--loads", loads]) == 2
    assert "give 0 (quiet) first" in capsys.readouterr().err


def test_repeats_must_be_at_least_one(capsys):
    assert contention.main(["--mnistlab-only", "--repeats", "0"]) == 2
    assert "--repeats 0: give at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("threads", ["2,2", "0", "two", "auto,"])
def test_thread_choices_must_be_distinct_counts_auto_or_default(threads, capsys):
    assert contention.main(["--mnistlab-only", "--threads", threads]) == 2
    assert "give distinct values" in capsys.readouterr().err


def test_each_thread_choice_is_a_row_of_medians_over_the_rounds(monkeypatch, capsys):
    """Fake trainings: each round's seconds depend on the round, so the medians and the row per choice show."""
    calls = []

    def fake(seed, out, args, threads="default"):
        calls.append(threads)
        level = 1.0 + len(calls) // 2 % 3  # rounds differ; the median is the middle one
        return {"seconds": {"ann": level, "cnn": 10 * level},
                "machine": {"threads": 1 if threads == "auto" else 2, "cpu_model": "cpu", "cpu_capability": "X",
                            "cores_available": 2, "cpu_count": 2, "omp_wait_policy": "PASSIVE"}}

    monkeypatch.setattr(contention, "train_mnistlab", fake)
    monkeypatch.setattr(contention, "BusyProcesses", lambda count: contextlib.nullcontext())
    assert contention.main(["--mnistlab-only", "--loads", "0", "--repeats", "3", "--threads", "default,auto"]) == 0
    table = capsys.readouterr().out
    assert calls == ["default", "auto"] * 3
    assert "median of 3 rounds" in table
    assert "mnistlab --threads auto: 0: 1/1/1" in table and "mnistlab: 0: 2/2/2" in table
    assert "| ann | mnistlab | 2.00 |" in table and "| cnn | mnistlab --threads auto | 20.00 |" in table


def test_busy_processes_run_for_the_block_and_are_stopped(tmp_path):
    with contention.BusyProcesses(2) as busy:
        pids = [process.pid for process in busy.processes]
        assert len(pids) == 2 and all(process.poll() is None for process in busy.processes)
    assert all(process.returncode is not None for process in busy.processes)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_table_gives_each_slowdown_against_the_quiet_run():
    results = {"mnistlab": {0: {"ann": 10.0, "cnn": 20.0}, 1: {"ann": 15.0, "cnn": 30.0}, 2: {"ann": 40.0, "cnn": 25.0}},
               "keras": {0: {"ann": 8.0, "cnn": 16.0}, 1: {"ann": 16.0, "cnn": 16.0}, 2: {"ann": 24.0, "cnn": 32.0}}}
    table = contention.format_table(results, [0, 1, 2], ["header"])
    assert "| ann | mnistlab | 10.00 | 15.00 | 1.50x | 40.00 | 4.00x |" in table
    assert "| cnn | keras | 16.00 | 16.00 | 1.00x | 32.00 | 2.00x |" in table
