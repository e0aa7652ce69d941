"""A stopped `glia compare` keeps what finished: a partial table, and exit status 130."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def test_sigterm_writes_the_partial_table(tmp_path):
    out = tmp_path / "cmp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "glia_nb.cli", "compare", "routing-a10", "--methods",
         "glia-scg,baselines", "--budget-sims", "2", "--runs", "3", "--duration", "30",
         "--eval-seeds", "2", "--workers", "1", "--out", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ))
    seen, deadline = [], time.monotonic() + 600
    try:
        for line in proc.stderr:  # bounded by the deadline below and by the process ending
            seen.append(line)
            if "[b2 glia-scg run 0] ok" in line:
                proc.send_signal(signal.SIGTERM)
                break
            assert time.monotonic() < deadline, "the first run never finished"
        stdout, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(seen[-20:])
    doc = json.loads(stdout)
    assert doc["stopped"] is True and doc["partial_budget"] == "2"
    rows = {r["method"]: r for r in doc["results"]["2"]["rows"]}
    assert rows["glia-scg"]["runs"] == 1  # the one run that finished, not three
    assert "LLQ" in rows and (out / "table_b2.md").is_file()
