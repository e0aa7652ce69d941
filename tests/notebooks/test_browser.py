"""A person in JupyterLab: open the case study, Run All, nudge the Researcher, approve an
edited Supervisor intervention, and find both in the session's journal.

JupyterLab runs on 127.0.0.1 (a free port, a random token, its own config, runtime and
settings directories, serving a temporary copy of notebooks/ so autosave never touches
the repository) with ``GLIA_APPROVAL=manual`` in its environment, so the notebook's session
queues the Supervisor's interventions in the inbox. Debian's Chromium
(``/usr/bin/chromium``; never a downloaded browser) is driven by Playwright for Python.
Screenshots go to test-artifacts/. Every wait is bounded, and the server and everything
it started are ended by process id afterwards.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
NOTEBOOK = "02_routing_case_study.ipynb"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
NUDGE = "Look at who waits longest before you tune parameters (nudge from the browser test)"
EDIT_SUFFIX = " [edited in the browser]"

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
        return r.read()


class Lab:
    """A JupyterLab server in a temporary directory; ``stop()`` ends it and its children."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port, self.token = tmp, _free_port(), secrets.token_hex(16)
        self.root = tmp / "lab"
        (self.root / "notebooks").mkdir(parents=True)
        shutil.copy(ROOT / "notebooks" / NOTEBOOK, self.root / "notebooks" / NOTEBOOK)
        settings = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        self.runs = tmp / "runs"
        env = {**os.environ,
               "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"), "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
               "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
               "GLIA_APPROVAL": "manual", "GLIA_RUNS": str(self.runs)}
        env.pop("GLIA_MODEL", None)
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_path = tmp / "jupyterlab.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, cwd=self.root, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                _get(f"{self.base}/api/status?token={self.token}")
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"JupyterLab not ready after {timeout:.0f} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """Shut the kernels down, stop the server, then end whatever it started, by pid."""
        import psutil

        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        try:
            for k in json.loads(_get(f"{self.base}/api/kernels?token={self.token}")):
                req = urllib.request.Request(f"{self.base}/api/kernels/{k['id']}?token={self.token}", method="DELETE")
                urllib.request.urlopen(req, timeout=10).read()  # noqa: S310 - loopback only
        except (OSError, ValueError):
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for child in children:  # kernels run in sessions of their own; sandbox workers under them
            try:
                child.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(children, timeout=10)
        self._log.close()


def _kernel_idle(lab: Lab) -> bool:
    """The notebook's kernel exists on the server and reports idle."""
    try:
        sessions = json.loads(_get(f"{lab.base}/api/sessions?token={lab.token}"))
    except (OSError, ValueError):
        return False
    return any(s.get("path", "").endswith(NOTEBOOK) and (s.get("kernel") or {}).get("execution_state") == "idle"
               for s in sessions)


_STARTED = ("() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
            ".some(e => /\\[(\\d+|\\*)\\]/.test(e.textContent))")


def _run_all(page, lab: Lab, tries: int = 3) -> None:
    """Run All Cells once the kernel is connected. JupyterLab clears the cells instead of
    running them when the click lands before the kernel connection is up, so check that
    execution started and try again if not."""
    for attempt in range(tries):
        _wait_for(lambda: _kernel_idle(lab), 90, "the notebook's kernel to be idle")
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
            "?.getAttribute('data-status') === 'idle'", timeout=120_000)
        page.click("#jp-MainMenu .lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-item .lm-Menu-itemLabel:text-is('Run All Cells')")
        try:
            page.wait_for_function(_STARTED, timeout=20_000)
            return
        except Exception:
            if attempt == tries - 1:
                raise
            page.wait_for_timeout(2_000)


def _journal(session_dir: Path) -> list[dict]:
    path = session_dir / "journal.jsonl"
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a record being written
            pass
    return out


def _wait_for(predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_person_steers_the_case_study_in_jupyterlab(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("jupyterlab")
    expect = sync_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-failure.png").unlink(missing_ok=True)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    lab = Lab(tmp_path)
    try:
        lab.wait_ready()
        timings["server ready"] = time.monotonic() - t0
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 1900})
                page.set_default_timeout(60_000)
                page.goto(f"{lab.base}/lab/tree/notebooks/{NOTEBOOK}?token={lab.token}&reset", timeout=90_000)
                _run_all(page, lab)
                timings["running"] = time.monotonic() - t0

                panel = page.locator(".glia-research-panel")
                panel.wait_for(state="visible", timeout=300_000)  # slow under load: imports + numba
                timings["panel rendered"] = time.monotonic() - t0
                dir_label = panel.locator(".glia-session-dir")
                expect(dir_label).to_contain_text(str(lab.runs), timeout=60_000)  # rendered with its value
                # textContent, as the expectation above checked: innerText depends on layout
                # and came back empty once while the output area was being re-laid out.
                session_dir = Path((dir_label.text_content() or "").strip())
                assert session_dir.parent == lab.runs, session_dir
                expect(panel.locator(".glia-status")).to_have_text(re.compile("running|waiting_approval"),
                                                                    timeout=120_000)

                # A nudge: the Send button enables only once the kernel has seen the text.
                text = panel.locator(".glia-nudge-text textarea")
                send = panel.locator("button.glia-nudge-send")
                expect(send).to_be_disabled()
                text.fill(NUDGE)
                expect(send).to_be_enabled(timeout=60_000)
                send.click()
                expect(text).to_have_value("", timeout=60_000)  # the panel clears it after session.nudge
                expect(panel.locator(".glia-transcript")).to_contain_text(NUDGE, timeout=30_000)
                timings["nudge sent"] = time.monotonic() - t0

                # The Supervisor intervenes when experiments stop improving; in manual mode it waits here.
                inbox = page.locator(".glia-inbox")
                card = inbox.locator(".glia-intervention:visible").first
                card.wait_for(state="visible", timeout=240_000)
                expect(panel.locator(".glia-status")).to_have_text("waiting_approval", timeout=30_000)
                timings["intervention pending"] = time.monotonic() - t0
                meta = card.locator(".glia-intervention-meta")
                expect(meta).to_contain_text(re.compile(r"iv-\d+"), timeout=30_000)
                iv_id = re.search(r"iv-\d+", meta.text_content() or "").group(0)
                box = card.locator(".glia-intervention-text textarea")
                expect(box).not_to_have_value("", timeout=30_000)
                card.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "browser-inbox.png"))
                edited = box.input_value().strip() + EDIT_SUFFIX
                box.fill(edited)
                approve = card.locator("button.glia-approve")
                expect(approve).to_have_text(re.compile("Approve edited"), timeout=30_000)
                approve.click()
                # Its card goes (another intervention may follow it), and the transcript shows the edit.
                expect(inbox.locator(".glia-intervention:visible .glia-intervention-meta", has_text=iv_id)) \
                    .to_have_count(0, timeout=30_000)
                expect(panel.locator(".glia-transcript")).to_contain_text(f"edited intervention {iv_id}",
                                                                          timeout=30_000)
                timings["intervention approved"] = time.monotonic() - t0

                # Both are in the journal, the session's source of truth.
                records = _wait_for(
                    lambda: (lambda r: r if any(x["type"] == "intervention_edited" for x in r) else None)(
                        _journal(session_dir)), 30, "the edit in the journal")
                nudges = [r for r in records if r["type"] == "nudge"]
                assert [n["text"] for n in nudges] == [NUDGE]
                edits = [r for r in records if r["type"] == "intervention_edited"]
                assert len(edits) == 1 and edits[0]["id"] == iv_id and edits[0]["text"] == edited
                queued = [r for r in records if r["type"] == "intervention_queued"]
                assert edits[0]["id"] in {q["id"] for q in queued}
                # ... and the Researcher is told: the edited text is delivered before its next turn.
                _wait_for(lambda: any(r["type"] == "user_message" and r.get("source_id") == edits[0]["id"]
                                      and EDIT_SUFFIX.strip() in r.get("text", "") for r in _journal(session_dir)),
                          60, "the edited intervention delivered to the Researcher")

                panel.evaluate("e => e.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(500)
                page.screenshot(path=str(ARTIFACTS / "browser.png"))
                timings["done"] = time.monotonic() - t0
            except BaseException:
                try:  # what the page looked like when it failed
                    page.screenshot(path=str(ARTIFACTS / "browser-failure.png"))
                except Exception:
                    pass
                raise
            finally:
                browser.close()
    finally:
        lab.stop()
        print("browser test timings (s):", {k: round(v, 1) for k, v in timings.items()})
