"""The HTML report in a real browser: headless Chromium over the DevTools protocol (no extra packages).

Opens the report from a file:// URL and checks what only a browser can: no console errors,
no network requests at all, no script from the results runs (an <img onerror> in a reason),
and plotly actually drew every chart. Saves one screenshot to reports/report-screenshot.png.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.report.html import write_report
from tests import synthetic

EVIL = "<img src=x onerror=alert(1)>"
SCREENSHOT = Path(__file__).resolve().parents[1] / "reports" / "report-screenshot.png"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe"]


class Browser:
    """Minimal CDP client over --remote-debugging-pipe: fd 3 carries commands in, fd 4 replies out,
    each message one JSON object terminated by NUL."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def plumb() -> None:  # in the child, before exec: put the pipe ends at fds 3 and 4
            # Move them above 4 first: dup2(3, 3) would keep fd 3 close-on-exec.
            read_end = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, preexec_fn=plumb, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._next = 0
        self._write_lock = threading.Lock()
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_child, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                    if message.get("method") == "Page.javascriptDialogOpening":
                        # An open alert() blocks the page; dismiss it (the test fails on the event).
                        self._write({"id": -len(self.events), "method": "Page.handleJavaScriptDialog",
                                     "params": {"accept": False}, "sessionId": message.get("sessionId")})
                self._cond.notify_all()

    def _write(self, message: dict[str, Any]) -> None:
        with self._write_lock:
            os.write(self._to_child, json.dumps(message).encode() + b"\0")

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 20.0) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._write(message)
        with self._cond:
            if not self._cond.wait_for(lambda: self._next in self._replies, timeout):
                raise TimeoutError(f"no reply to {method} within {timeout}s")
            reply = self._replies.pop(self._next)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 20.0) -> dict[str, Any]:
        with self._cond:
            found = self._cond.wait_for(lambda: next((e for e in self.events if e["method"] == method), None),
                                        timeout)
        if not found:
            raise TimeoutError(f"no {method} within {timeout}s")
        return found

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)


def open_page(browser: Browser, url: str, width: int = 1400, height: int = 1800) -> str:
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Runtime", "Log", "Network", "Page"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
    browser.send("Page.navigate", {"url": url}, session=session)
    browser.wait_event("Page.loadEventFired")
    return session


def evaluate(browser: Browser, session: str, expression: str) -> Any:
    result = browser.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                               "returnByValue": True}, session=session, timeout=30)
    if "exceptionDetails" in result:
        raise RuntimeError(result["exceptionDetails"])
    return result["result"].get("value")


# Scrolls through the page so that every lazily drawn chart comes into view, then counts them.
DRAW_ALL = """(async () => {
  const step = window.innerHeight / 2;
  for (let y = 0; y < document.body.scrollHeight; y += step) {
    window.scrollTo(0, y); await new Promise(r => setTimeout(r, 30));
  }
  const deadline = Date.now() + 15000;
  const want = document.querySelectorAll('[data-fig]').length;
  const drawn = () => Array.from(document.querySelectorAll('.js-plotly-plot'))
      .filter(el => el.querySelectorAll('svg.main-svg path').length > 0).length;
  while (drawn() < want && Date.now() < deadline) { await new Promise(r => setTimeout(r, 50)); }
  window.scrollTo(0, 0);
  return {want: want, drawn: drawn(), tables: document.querySelectorAll('table.sortable').length};
})()"""


# Sorts the percentiles table by p50 (click twice: descending) and filters it, as a reader would.
INTERACT = """(() => {
  const table = document.getElementById('t-percentiles');
  const headers = Array.from(table.querySelectorAll('thead th'));
  const index = headers.findIndex(th => th.textContent.trim().startsWith('p50'));
  const data = () => Array.from(table.tBodies[0].rows).filter(r => !r.classList.contains('note-row'));
  const values = () => data().filter(r => !r.hidden).map(r => parseFloat(r.cells[index].getAttribute('data-v')));
  headers[index].querySelector('button').click();
  const ascending = values();
  headers[index].querySelector('button').click();
  const descending = values();
  const input = document.querySelector('input[data-filter="t-percentiles"]');
  input.value = 'int8 "batch 8" host-b';
  input.dispatchEvent(new Event('input'));
  const shown = data().filter(r => !r.hidden);
  const match = r => ['int8', 'batch 8', 'host-b'].every(t => r.textContent.includes(t));
  // Every note line stays right under its row, in order, after sorting and filtering.
  const paired = Array.from(table.tBodies[0].rows).every(r => !r.classList.contains('note-row') ||
      (r.previousElementSibling && !r.previousElementSibling.classList.contains('note-row') &&
       r.hidden === r.previousElementSibling.hidden));
  const noteLines = table.querySelectorAll('tr.note-row').length;
  const result = {ascending: ascending, descending: descending, total: data().length, paired: paired,
                  notes: noteLines,
                  shown: shown.length, allMatch: shown.every(match), sort: headers[index].getAttribute('aria-sort')};
  input.value = ''; input.dispatchEvent(new Event('input'));
  return result;
})()"""


def screenshot(browser: Browser, session: str, path: Path, clip_height: int | None = None) -> None:
    params: dict[str, Any] = {"format": "png"}
    if clip_height:
        params["clip"] = {"x": 0, "y": 0, "width": 1400, "height": clip_height, "scale": 1}
        params["captureBeyondViewport"] = True
    data = browser.send("Page.captureScreenshot", params, session=session, timeout=30)["data"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(data))


def problems(events: list[dict[str, Any]]) -> tuple[list[str], list[str], list[str]]:
    """(console errors, network requests other than the file itself, dialogs opened)."""
    errors, requests, dialogs = [], [], []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(json.dumps(params.get("args"))[:300])
        elif method == "Runtime.exceptionThrown":
            errors.append(json.dumps(params.get("exceptionDetails"))[:300])
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            errors.append(params["entry"].get("text", "")[:300])
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(("file:", "data:", "blob:", "about:")):
                requests.append(url)
        elif method == "Page.javascriptDialogOpening":
            dialogs.append(params.get("message", ""))
    return errors, requests, dialogs




@pytest.mark.slow
@pytest.mark.timeout(90)
def test_report_in_headless_chromium(tmp_path: Path, chromium: str) -> None:
    documents = synthetic.study_documents()
    documents[0]["cases"].append(synthetic.failed_case("resnet50", "fp32", "tensorrt", reason=EVIL))
    paths = []
    for index, document in enumerate(documents):
        paths.append(tmp_path / f"run-{index}.json")
        paths[-1].write_text(json.dumps(document))
    report = write_report(paths, tmp_path / "report.html")

    browser = Browser(chromium, Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)))
    try:
        session = open_page(browser, report.as_uri())
        state = evaluate(browser, session, DRAW_ALL)
        interaction = evaluate(browser, session, INTERACT)
        text = evaluate(browser, session, "document.body.innerText")
        images = evaluate(browser, session, "document.images.length")
        time.sleep(0.2)  # let late console messages arrive
        screenshot(browser, session, SCREENSHOT)
        errors, requests, dialogs = problems(list(browser.events))
    finally:
        browser.close()

    assert not errors, errors
    assert not requests, f"the report made network requests: {requests}"
    assert not dialogs, f"script from the results ran: {dialogs}"
    assert images == 0, "an <img> from the results became an element"
    assert EVIL in text, "the hostile reason must show as text"
    assert state["want"] >= 8 and state["drawn"] == state["want"], state
    assert state["tables"] >= 6
    assert "host-a" in text and "host-b" in text
    assert interaction["ascending"] == sorted(interaction["ascending"])
    assert interaction["descending"] == sorted(interaction["descending"], reverse=True)
    assert interaction["sort"] == "descending"
    assert 0 < interaction["shown"] < interaction["total"] and interaction["allMatch"], interaction
    assert interaction["notes"] > 0 and interaction["paired"], interaction  # notes under their rows, never off screen
    assert SCREENSHOT.stat().st_size > 10_000


# Brings the first chart into view, waits for it and the packed tables, then filters the inflated table.
LARGE_READY = """(async () => {
  document.querySelector('[data-fig]').scrollIntoView();
  const deadline = Date.now() + 25000;
  const ready = () => document.querySelector('#details[data-ready]') &&
      document.querySelector('.js-plotly-plot svg.main-svg path');
  while (!ready() && Date.now() < deadline) { await new Promise(r => setTimeout(r, 25)); }
  const table = document.getElementById('t-percentiles');
  const input = document.querySelector('input[data-filter="t-percentiles"]');
  const first = table.tBodies[0].rows[0].cells[0].textContent.trim();
  input.value = '"' + first + '"'; input.dispatchEvent(new Event('input'));
  const data = Array.from(table.tBodies[0].rows).filter(r => !r.classList.contains('note-row'));
  const shown = data.filter(r => !r.hidden).length;
  return {ready: !!ready(), ms: performance.now(), rows: data.length, shown: shown,
          charts: document.querySelectorAll('[data-fig]').length};
})()"""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_2000_case_report_is_small_and_opens_in_the_browser(tmp_path: Path, chromium: str) -> None:
    """Chart data and the "All numbers" tables travel gzipped above 1 MB: the page inflates them.
    Size is checked; the load time is printed (a figure for the docs, not an assertion)."""
    path = tmp_path / "large.json"
    path.write_text(json.dumps(synthetic.large_document()))
    report = write_report([path], tmp_path / "large.html")
    size_mb = report.stat().st_size / 1e6
    assert size_mb <= 5.0, f"{size_mb:.2f} MB"
    browser = Browser(chromium, Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)))
    try:
        session = open_page(browser, report.as_uri())
        state = evaluate(browser, session, LARGE_READY)
        time.sleep(0.2)
        errors, requests, dialogs = problems(list(browser.events))
    finally:
        browser.close()
    print(f"2,000-case report: {size_mb:.2f} MB, tables and first chart ready {state['ms']:.0f} ms after navigation")
    assert not errors and not requests and not dialogs, (errors, requests, dialogs)
    assert state["ready"] and state["rows"] > 1900, state  # every ok case of the 2,000
    assert 0 < state["shown"] < 2000, state


# Every "Where the time goes" chart, drawn: its bars are in the SVG, one trace per operator type.
OP_CHARTS = """(() => {
  const charts = Array.from(document.querySelectorAll('.js-plotly-plot')).filter(el =>
      (el.querySelector('.gtitle') || {}).textContent === 'Where the time goes (kernel time by operator type)');
  return {charts: charts.length,
          bars: charts.map(el => el.querySelectorAll('g.trace.bars path').length),
          legends: charts.map(el => Array.from(el.querySelectorAll('g.legend text.legendtext')).map(t => t.textContent))};
})()"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quickstart_cases_carry_op_breakdowns_the_report_draws(tmp_path: Path, chromium: str) -> None:
    """The quick start suite, shortened (one process per case): every ok case has an op-type
    breakdown whose times add up to its kernel time, and the report draws it per model."""
    import yaml

    from .conftest import REPO, only_results, run_cli

    suite = yaml.safe_load((REPO / "suites" / "quickstart.yaml").read_text())
    suite["measure"] = {"warmup_s": 0, "warmup_iterations": 1, "min_iterations": 3, "min_s": 0, "max_s": 1,
                        "repeats": 1}
    path = tmp_path / "quickstart.yaml"
    path.write_text(yaml.safe_dump(suite))
    out = run_cli("run", path, "-o", tmp_path / "r", "--report", tmp_path / "q.html")
    assert out.returncode in (0, 1, 4), out.stdout + out.stderr
    cases = only_results(tmp_path / "r")["cases"]
    ok = [c for c in cases if c["status"] == "ok"]
    assert len(ok) >= 20, [(c["case_id"], c.get("reason")) for c in cases if c["status"] != "ok"]
    for case in ok:
        profile = case["profile"]
        by_op = profile["by_op_type"]
        assert by_op and sum(v["ms"] for v in by_op.values()) == pytest.approx(profile["kernel_ms"], rel=0.10), case["case_id"]
        assert 0 < profile["kernel_ms"] <= 1.05 * profile["model_run_ms"], (case["case_id"], profile)
        assert case["placement"]["unit"] == "graph nodes"

    browser = Browser(chromium, Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)))
    try:
        session = open_page(browser, (tmp_path / "q.html").as_uri())
        state = evaluate(browser, session, DRAW_ALL)
        charts = evaluate(browser, session, OP_CHARTS)
        errors, requests, dialogs = problems(list(browser.events))
    finally:
        browser.close()
    assert not errors and not requests and not dialogs, (errors, requests, dialogs)
    assert state["drawn"] == state["want"], state
    assert charts["charts"] == 2, charts  # squeezenet and the encoder
    assert all(bars > 0 for bars in charts["bars"]), charts
    assert "Conv" in charts["legends"][0] and "MatMul" in charts["legends"][1], charts
