"""A person in JupyterLab steers the case study with the keyboard and the mouse, at a
person's pace, while the notebook's cell awaits the running session; then replays it.

The person types two nudges of different lengths key by key (one sent with Enter, one
with the button), flips the approval switch three times, holds an experiment in step
mode and edits its hypothesis, opens a tool call and keeps reading while entries arrive,
pauses and resumes, approves one Supervisor intervention after editing it and rejects
another. Each action is checked in the session's journal, the source of truth, with the
exact text typed: a nudge that arrives truncated fails the test. Then a second notebook
shows the finished session in a ReplayPanel and the person scrubs it with the keyboard.

JupyterLab runs on 127.0.0.1 (a free port, a random token, its own config, runtime and
settings directories, serving a temporary copy of notebook 02 so autosave never touches
the repository). In that copy the Supervisor is a scripted one that asks a question every
few turns, so there is more than one intervention to act on. Debian's Chromium
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
NUDGES = ("Check the queues first.",
          "Look at who waits longest before you tune parameters: the long prompts behind short ones, "
          "and the requests restarted twice (typed in the browser test).")
HYPOTHESIS = "Edited in step mode: keeping KV head-room at admission cuts restarts."
EDIT_SUFFIX = " Also compare with the memory timelines (edited in the browser)."
TYPING_DELAY_MS = 35  # a quick typist; every keystroke is its own input event
SCRIPTED_SUPERVISOR = (
    'supervisor_client=ScriptedClient([f"DECISION: question\\nMESSAGE: Question {i}: which requests wait longest?"'
    ' for i in range(60)]),\n    supervisor_config=SupervisorConfig(every_n_turns=4, stall_experiments=None),')

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _copy_with_scripted_supervisor(src: Path, dst: Path) -> None:
    """Notebook 02 with a Supervisor that asks a question every four turns."""
    nb = json.loads(src.read_text())
    cell = next(c for c in nb["cells"] if "session" in c.get("metadata", {}).get("tags", []))
    code = "".join(cell["source"])
    old = 'supervisor_client=OfflineSupervisor() if RESEARCHER == "offline" else None,'
    assert old in code, "notebook 02's session cell changed: update the browser test"
    code = ("from glia_nb.llm import ScriptedClient\nfrom glia_nb.research.supervisor import SupervisorConfig\n"
            + code.replace(old, SCRIPTED_SUPERVISOR))
    cell["source"] = code
    dst.write_text(json.dumps(nb))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
        return r.read()


class Lab:
    """A JupyterLab server in a temporary directory; ``stop()`` ends it and its children."""

    def __init__(self, tmp: Path, notebooks: tuple[str, ...] = ()) -> None:
        self.tmp, self.port, self.token = tmp, _free_port(), secrets.token_hex(16)
        self.root = tmp / "lab"
        (self.root / "notebooks").mkdir(parents=True)
        if notebooks:  # as they are
            for name in notebooks:
                shutil.copy(ROOT / "notebooks" / name, self.root / "notebooks" / name)
        else:
            _copy_with_scripted_supervisor(ROOT / "notebooks" / NOTEBOOK, self.root / "notebooks" / NOTEBOOK)
        settings = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        self.runs = tmp / "runs"
        env = {**os.environ,
               "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"), "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
               "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
               "GLIA_APPROVAL": "auto", "GLIA_RUNS": str(self.runs)}
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


def _kernel_idle(lab: Lab, notebook: str = NOTEBOOK) -> bool:
    """The notebook's kernel exists on the server and reports idle."""
    try:
        sessions = json.loads(_get(f"{lab.base}/api/sessions?token={lab.token}"))
    except (OSError, ValueError):
        return False
    return any(s.get("path", "").endswith(notebook) and (s.get("kernel") or {}).get("execution_state") == "idle"
               for s in sessions)


_STARTED = ("() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
            ".some(e => /\\[(\\d+|\\*)\\]/.test(e.textContent))")


def _run_all(page, lab: Lab, tries: int = 3, notebook: str = NOTEBOOK) -> None:
    """Run All Cells once the kernel is connected. JupyterLab clears the cells instead of
    running them when the click lands before the kernel connection is up, so check that
    execution started and try again if not."""
    for attempt in range(tries):
        _wait_for(lambda: _kernel_idle(lab, notebook), 90, "the notebook's kernel to be idle")
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


def _of_type(session_dir: Path, *types: str) -> list[dict]:
    return [r for r in _journal(session_dir) if r["type"] in types]


def _type(page, locator, text: str) -> None:
    """Click into a text box and type like a person: one key at a time."""
    locator.click()
    locator.press_sequentially(text, delay=TYPING_DELAY_MS)


def _replay_notebook(path: Path, session_dir: Path) -> None:
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": f"from glia_nb.widgets import ReplayPanel\nReplayPanel({str(session_dir)!r})"}
    path.write_text(json.dumps({"cells": [cell], "metadata": {"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}))


def test_person_steers_the_case_study_in_jupyterlab(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("jupyterlab")
    pytest.importorskip("anywidget")
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
                # textContent, as the expectation above checked: innerText depends on layout.
                session_dir = Path((dir_label.text_content() or "").strip())
                assert session_dir.parent == lab.runs, session_dir
                status = panel.locator(".glia-status")
                expect(status).to_have_text("running", timeout=120_000)
                # Step mode on first, so the study waits for the person at each experiment.
                step_button = panel.locator("button.glia-step")
                step_button.click()
                expect(step_button).to_have_text(re.compile("Step mode: on"), timeout=30_000)

                # Two nudges, typed key by key while the notebook's cell awaits the session:
                # the first sent with Enter, the second with the button. Each box clears
                # once the kernel has it, and each text must reach the journal whole.
                nudge = panel.locator(".glia-nudge textarea.glia-sendbox-text")
                _type(page, nudge, NUDGES[0])
                nudge.press("Enter")
                expect(nudge).to_have_value("", timeout=30_000)
                _type(page, nudge, NUDGES[1])
                panel.locator(".glia-nudge button.glia-sendbox-send").click()
                expect(nudge).to_have_value("", timeout=30_000)
                transcript = panel.locator(".glia-transcript")
                for text in NUDGES:
                    expect(transcript).to_contain_text(text, timeout=30_000)
                assert [n["text"] for n in _of_type(session_dir, "nudge")] == list(NUDGES)
                timings["nudges sent"] = time.monotonic() - t0

                # Step mode holds the next experiment: edit its hypothesis, then run it.
                step_banner = panel.locator(".glia-step-banner")
                step_banner.wait_for(state="visible", timeout=180_000)
                expect(status).to_have_text(re.compile("holding the next experiment"), timeout=30_000)
                hyp = step_banner.locator("textarea.glia-sendbox-text")
                expect(hyp).not_to_have_value("", timeout=30_000)
                hyp.click()
                hyp.press("Control+A")
                hyp.press_sequentially(HYPOTHESIS, delay=TYPING_DELAY_MS)
                step_banner.locator("button.glia-sendbox-run").click()
                released = _wait_for(lambda: _of_type(session_dir, "step_released"), 30, "the step released")
                assert released[0]["action"] == "run" and released[0]["hypothesis"] == HYPOTHESIS
                _wait_for(lambda: any(e.get("hypothesis") == HYPOTHESIS for e in _of_type(session_dir, "experiment")),
                          180, "the experiment run with the edited hypothesis")
                timings["step approved"] = time.monotonic() - t0

                step_button.click()  # step mode off: the study runs on
                expect(step_button).to_have_text(re.compile("Step mode: off"), timeout=30_000)

                # The approval switch, flipped three times in quick succession: auto -> manual -> auto -> manual.
                switch = panel.locator("button.glia-policy")
                for _ in range(3):
                    switch.click()
                    page.wait_for_timeout(150)
                expect(switch).to_have_text(re.compile("approval: manual"), timeout=30_000)
                flips = _wait_for(lambda: (lambda r: r if len(r) >= 3 else None)(
                    _of_type(session_dir, "approval_policy")), 30, "three approval flips in the journal")
                assert [r["approval"] for r in flips] == ["manual", "auto", "manual"]

                # Pause and resume.
                panel.locator("button.glia-pause").click()
                expect(status).to_have_text(re.compile("paused"), timeout=60_000)
                panel.locator("button.glia-resume").click()
                _wait_for(lambda: _of_type(session_dir, "resume"), 30, "the resume in the journal")
                assert [r["type"] for r in _of_type(session_dir, "pause", "resume")] == ["pause", "resume"]

                # A Supervisor intervention waits as a banner: edit it, then approve.
                banner = panel.locator(".glia-banner")
                banner.wait_for(state="visible", timeout=240_000)
                expect(status).to_have_text(re.compile("waiting for your approval"), timeout=30_000)
                timings["intervention pending"] = time.monotonic() - t0
                meta = banner.locator(".glia-intervention-meta")
                expect(meta).to_contain_text(re.compile(r"iv-\d+"), timeout=30_000)
                iv_id = re.search(r"iv-\d+", meta.text_content() or "").group(0)
                box = banner.locator("textarea.glia-sendbox-text")
                expect(box).not_to_have_value("", timeout=30_000)
                original = box.input_value()
                banner.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "browser-intervention.png"))
                # Open a tool call: it must stay open while the entries that follow arrive.
                calls = transcript.locator("details.call")
                opened = calls.nth(calls.count() - 1)
                opened.locator("summary").click()
                assert opened.evaluate("e => e.open")
                entries = transcript.locator(".glia-tx-scroll > div.e")
                before = entries.count()
                box.click()
                box.press("Control+End")
                box.press_sequentially(EDIT_SUFFIX, delay=TYPING_DELAY_MS)
                banner.locator("button.glia-sendbox-approve").click()
                edits = _wait_for(lambda: _of_type(session_dir, "intervention_edited"), 30, "the edit in the journal")
                assert len(edits) == 1 and edits[0]["id"] == iv_id
                assert edits[0]["text"] == (original + EDIT_SUFFIX).strip()
                expect(transcript).to_contain_text(f"edited intervention {iv_id}", timeout=30_000)
                _wait_for(lambda: any(r["type"] == "user_message" and r.get("source_id") == iv_id
                                      and EDIT_SUFFIX.strip() in r.get("text", "") for r in _journal(session_dir)),
                          60, "the edited intervention delivered to the Researcher")

                _wait_for(lambda: entries.count() >= before + 3, 120, "new transcript entries")
                assert opened.evaluate("e => e.open"), "an opened tool call was collapsed by new entries"

                # The next one: reject it.
                expect(meta).not_to_contain_text(iv_id, timeout=240_000)
                banner.wait_for(state="visible", timeout=240_000)
                iv2 = re.search(r"iv-\d+", meta.text_content() or "").group(0)
                banner.locator("button.glia-sendbox-reject").click()
                rejected = _wait_for(lambda: _of_type(session_dir, "intervention_rejected"), 30, "the rejection")
                assert [r["id"] for r in rejected] == [iv2]
                timings["interventions handled"] = time.monotonic() - t0

                panel.evaluate("e => e.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(500)
                page.screenshot(path=str(ARTIFACTS / "browser.png"))
                panel.locator("button.glia-stop").click()
                _wait_for(lambda: _of_type(session_dir, "finished"), 120, "the session to end")
                expect(status).to_have_text("stopped", timeout=60_000)
                # Nothing typed was lost or cut on the way.
                assert [n["text"] for n in _of_type(session_dir, "nudge")] == list(NUDGES)
                delivered = [r["text"] for r in _of_type(session_dir, "user_message") if r.get("source") == "person"]
                assert delivered == [f"[Person] {t}" for t in NUDGES]
                timings["steered"] = time.monotonic() - t0

                # A reader replays the finished session with the scrubber (keyboard on the slider).
                replay_nb = "replay.ipynb"
                _replay_notebook(lab.root / "notebooks" / replay_nb, session_dir)
                page.goto(f"{lab.base}/lab/tree/notebooks/{replay_nb}?token={lab.token}", timeout=90_000)
                _run_all(page, lab, notebook=replay_nb)
                replay = page.locator(".glia-replay-panel")
                replay.wait_for(state="visible", timeout=180_000)
                where = replay.locator(".glia-replay-where")
                n = len(_journal(session_dir)) - 1  # without the header
                expect(where).to_contain_text(f"{n} / {n}", timeout=60_000)
                for _ in range(3):
                    replay.locator("button.glia-replay-prev").click()
                expect(where).to_contain_text(f"{n - 3} / {n}", timeout=30_000)
                expect(replay.locator(".glia-transcript")).to_contain_text(NUDGES[1], timeout=30_000)
                replay.locator("button.glia-view-lineage").click()
                expect(replay.locator(".glia-view .glia-lineage")).to_contain_text("code diff against its parent",
                                                                                 timeout=30_000)
                replay.evaluate("e => e.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(500)
                page.screenshot(path=str(ARTIFACTS / "browser-replay.png"))
                timings["replayed"] = time.monotonic() - t0
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


ALL_NOTEBOOKS = tuple(sorted(p.name for p in (ROOT / "notebooks").glob("0*.ipynb")))
_DONE = ("() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle'"
         " && ![...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(e => e.textContent.includes('*'))")


@pytest.mark.skipif(os.environ.get("GLIA_SCREENSHOTS") != "1",
                    reason="runs every notebook in the browser (minutes each); GLIA_SCREENSHOTS=1 turns it on")
def test_every_notebook_runs_and_renders_in_chromium(tmp_path):
    """Run All in JupyterLab for notebooks 01-06, check no cell printed a traceback, and
    save screenshots of each (the docs' images come from these)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    lab = Lab(tmp_path, notebooks=ALL_NOTEBOOKS)
    timings = {}
    try:
        lab.wait_ready()
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                for name in ALL_NOTEBOOKS:
                    t0 = time.monotonic()
                    page = browser.new_page(viewport={"width": 1500, "height": 1900})
                    page.goto(f"{lab.base}/lab/tree/notebooks/{name}?token={lab.token}", timeout=90_000)
                    _run_all(page, lab, notebook=name)
                    page.wait_for_function(_DONE, timeout=900_000, polling=2_000)
                    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                          has_text="Traceback")
                    assert errors.count() == 0, f"{name}: {errors.first.text_content()[:2000]}"
                    stem = name.removesuffix(".ipynb")
                    # JupyterLab renders only the cells in view: page through the notebook's scroller.
                    scroller = page.locator(".jp-NotebookPanel:visible .jp-WindowedPanel-outer").first
                    height = scroller.evaluate("e => e.scrollHeight")
                    for i, frac in enumerate((0.0, 0.25, 0.5, 0.75)):
                        scroller.evaluate(f"e => e.scrollTop = {int(frac * height)}")
                        page.wait_for_timeout(1500)
                        page.screenshot(path=str(ARTIFACTS / f"{stem}-{i + 1}.png"))
                    timings[name] = round(time.monotonic() - t0, 1)
                    page.close()
            finally:
                browser.close()
    finally:
        lab.stop()
        print("notebook screenshots (s):", timings)
