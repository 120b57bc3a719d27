"""pytest plugin (entry point ``pytest11: harness``): a suite's cases as pytest-benchmark tests.

    pytest --harness-suite suites/quickstart.yaml --benchmark-only [--benchmark-autosave ...]

Every case of the suite becomes one test item that uses the ``benchmark`` fixture, so users
already on pytest-benchmark get its table, ``--benchmark-save``/``--benchmark-compare`` and
``--benchmark-compare-fail`` for free. Unavailable cases are skipped with the reason; failed
cases fail; a variant below the suite's accuracy thresholds fails after its numbers are kept.

What is timed, and why it is honest
-----------------------------------
The case runs exactly as ``harness run`` runs it: in fresh worker processes, inside the
target's own runtime (another venv for OpenVINO or CUDA builds), with the suite's warm-up,
stopping rule and repeats; the worker times each ``session.run`` with perf_counter_ns. Those
per-inference times are handed to the fixture as its rounds (1 iteration each, in seconds),
so pytest-benchmark's min/median/IQR/ops describe model inference and nothing else.

The alternatives were worse: ``benchmark.pedantic(session.run)`` in the pytest process would
time a different thing (pytest's interpreter and its onnxruntime build, not the target's, no
provider-fallback check, memory mixed with pytest's); ``pedantic`` over a function that
replays recorded durations, or a fake timer, would make pytest-benchmark claim it timed what
it did not. Handing the samples over needs the fixture's ``_make_stats`` (private, stable
since pytest-benchmark 3); it is used in one place below and fails with a clear message if
a future version drops it. ``extra_info`` says which timer measured the rounds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TIMER_NOTE = "rounds are per-inference times measured by the harness worker (perf_counter_ns around session.run)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "onnx-harness suites as benchmarks")
    group.addoption("--harness-suite", action="append", default=[], metavar="SUITE",
                    help="Collect every case of this suite YAML as a benchmark test (repeatable).")
    group.addoption("--harness-results", default=None, metavar="DIR",
                    help="Also write a harness results file per suite into DIR (for 'harness compare').")


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Make each suite file a collection argument, so pytest collects it like a test file.

    With no other paths on the command line this collects the suite alone (not testpaths),
    which is what ``pytest --harness-suite x.yaml`` means; paths given as well are collected too.
    """
    namespace = early_config.known_args_namespace
    positional = set(getattr(namespace, "file_or_dir", None) or [])
    for suite in getattr(namespace, "harness_suite", None) or []:
        if suite not in positional:
            args.append(suite)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    wanted = {Path(s).resolve() for s in parent.config.getoption("harness_suite") or []}
    if file_path.resolve() in wanted:
        return HarnessSuite.from_parent(parent, path=file_path)
    return None


class HarnessSuite(pytest.File):
    """A suite file: plans once, then yields one item per case; owns the run's shared state."""

    _runner: SuiteRunner | None = None

    def collect(self) -> Any:
        from .errors import InputError
        from .plan import build_plan
        from .suite import load_suite

        try:
            self.plan = build_plan(load_suite(self.path))
        except InputError as exc:
            raise self.CollectError(str(exc)) from None
        for case in self.plan.cases:
            item = HarnessCase.from_parent(self, name=case.case_id, callobj=benchmark_case)
            item.case = case
            item.add_marker(pytest.mark.benchmark(group=f"{self.plan.loaded.suite.name}/{case.model.name}"))
            yield item

    def runner(self) -> SuiteRunner:
        if self._runner is None:
            self._runner = SuiteRunner(self.plan, self.config.getoption("harness_results"))
        return self._runner

    def teardown(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None


class HarnessCase(pytest.Function):
    """One case; reported at the suite file with its case id."""

    case: Any = None

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"harness case {self.name}"  # a line number: pytest's warn() needs one


def benchmark_case(benchmark: Any, request: pytest.FixtureRequest) -> None:
    """Run the case through the harness runner, then report it to pytest-benchmark."""
    item = request.node
    claim(benchmark)
    record = item.parent.runner().run(item.case)
    publish(benchmark, record)


class SuiteRunner:
    """The same run session as ``harness run``: runtimes, variant builds, scratch space and,
    with ``--harness-results``, the results file (each case appended as it ends)."""

    def __init__(self, plan: Any, results_dir: str | None) -> None:
        from .run.session import RunSession

        self.session = RunSession(plan, Path(results_dir) if results_dir else None, "pytest", _say)

    def run(self, case: Any) -> Any:
        return self.session.measure(case)

    def close(self) -> None:
        self.session.close("complete")


def _say(text: str) -> None:
    print(text, flush=True)  # captured per test by pytest; shown with -s or on failure


def publish(benchmark: Any, record: Any) -> None:
    """Outcome and numbers of one case (a results CaseRecord), in pytest's and pytest-benchmark's terms."""
    from .export import extra_info

    if record.status == "unavailable":
        pytest.skip(f"unavailable: {record.reason}")
    if record.status != "ok":
        pytest.fail(f"{record.case_id} failed: {record.reason}", pytrace=False)
    benchmark.extra_info.update(extra_info(record))
    benchmark.extra_info["timer"] = TIMER_NOTE
    if benchmark.enabled:
        record_samples(benchmark, record.samples_ms)
    if record.accuracy is not None and record.accuracy.verdict == "fail":
        pytest.fail(f"{record.case_id}: accuracy below the suite's thresholds: "
                    f"{'; '.join(record.accuracy.problems)}", pytrace=False)


def claim(benchmark: Any) -> None:
    """Mark the fixture used (as benchmark()/pedantic() do), so a skipped or failed case does
    not also warn 'fixture was not used', and a second use still raises."""
    if getattr(benchmark, "_mode", None):
        raise RuntimeError(f"benchmark fixture already used in {benchmark._mode} mode")
    benchmark._mode = "harness worker samples"


def record_samples(benchmark: Any, samples_ms: list[float]) -> None:
    """Each measured inference becomes one round of one iteration, in seconds."""
    make_stats = getattr(benchmark, "_make_stats", None)
    if make_stats is None:
        raise RuntimeError("this pytest-benchmark has no BenchmarkFixture._make_stats; the harness plugin "
                           "needs pytest-benchmark 3.x-5.x (or a newer harness)")
    stats = make_stats(1)
    for value in samples_ms:
        stats.update(value / 1000.0)
