"""The chat page in headless Chromium (Debian package ``chromium``), driven over the DevTools
protocol: load /, enter the API key, ask questions (a model answer streamed from the tiny model and
an emergency), check the answers and the safety notice, take a screenshot. Skips without chromium.

The screenshot is kept at artifacts/serve/page.png (gitignored). MEDQA_PAGE_MODEL=<dir> serves a
real model instead of the tiny one (for a readable screenshot; run under the heavy-job lock)."""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from serve.launcher import REPO, ServerProcess, free_port
from stages.safety.rules import EMERGENCY_REPLY

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(autouse=True)
def _needs_chromium():
    if CHROMIUM is None:
        from conftest import skip_or_fail
        skip_or_fail("chromium not installed (apt-get install -y chromium fonts-noto-cjk)")

KEY = "page-key-5d1"
WIDTH, HEIGHT = 1000, 900
SCREENSHOT = REPO / "artifacts" / "serve" / "page.png"


class DevTools:
    """Minimal Chrome DevTools Protocol client over the page's websocket."""

    def __init__(self, ws_url: str):
        from websockets.sync.client import connect

        self._conn = connect(ws_url, max_size=None, open_timeout=30)
        self.ws = self._conn.__enter__()
        self._id = 0

    def call(self, method: str, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JS error: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait(self, expression: str, timeout: float = 120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"timed out waiting for: {expression}")

    def close(self):
        self._conn.__exit__(None, None, None)


@pytest.fixture
def browser(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--hide-scrollbars", f"--remote-debugging-port={port}", f"--user-data-dir={tmp_path / 'chrome'}",
         f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                pages = [t for t in requests.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                         if t["type"] == "page"]
                if pages:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("chromium did not start")
            time.sleep(0.3)
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        yield tools
        tools.close()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def _ask(page: DevTools, question: str, n: int) -> dict:
    page.js(f"document.getElementById('question').value = {json.dumps(question)};"
            "document.getElementById('send').click(); true")
    page.wait(f"document.querySelectorAll('.turn').length === {n} && "
              f"document.querySelectorAll('.turn')[{n - 1}].dataset.state !== 'streaming'", timeout=300)
    return page.js(f"""(() => {{ const t = document.querySelectorAll('.turn')[{n - 1}];
        return {{state: t.dataset.state, answer: t.querySelector('.answer').textContent,
                 rules: t.dataset.rules || '', meta: t.querySelector('.meta').textContent}}; }})()""")


def test_chat_page_round_trip_and_screenshot(browser, tmp_path, tiny_model_dir, triage_model_dir):
    from PIL import Image

    model = os.environ.get("MEDQA_PAGE_MODEL") or str(tiny_model_dir)
    with ServerProcess(["--model", model, "--max-new-tokens", os.environ.get("MEDQA_PAGE_TOKENS", "24"),
                        "--api-key-env", "MEDQA_PAGE_KEY", "--audit-log", str(tmp_path / "audit.jsonl"),
                        "--triage-model", str(triage_model_dir)],
                       log_path=tmp_path / "server.log", env={"MEDQA_PAGE_KEY": KEY}) as srv:
        page = browser
        page.call("Page.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
        page.call("Page.navigate", url=srv.url + "/")
        page.wait("document.readyState === 'complete' && !!document.getElementById('ask')", timeout=60)
        notice = page.js("document.getElementById('safety-notice').innerText")
        assert "120" in notice and "不能替代医生面诊" in notice
        assert page.js("getComputedStyle(document.querySelector('header')).backgroundColor") == "rgb(11, 107, 203)"

        # without the key: a clear 401 message on the page
        wrong = _ask(page, "头疼怎么办？", 1)
        assert wrong["state"] == "error" and "401" in wrong["answer"] and "API Key" in wrong["answer"]

        page.js(f"const k = document.getElementById('api-key'); k.value = {json.dumps(KEY)};"
                "k.dispatchEvent(new Event('change')); true")
        normal = _ask(page, "感冒了吃什么药好得快？", 2)
        assert normal["state"] == "done" and normal["answer"].strip(), normal
        assert "reminder_added" in normal["rules"] and "用时" in normal["meta"]

        emergency = _ask(page, "我爸突然胸痛，喘不上气", 3)
        assert emergency["state"] == "done" and emergency["answer"].startswith(EMERGENCY_REPLY)
        assert "emergency:chest_pain" in emergency["rules"] and "急症识别" in emergency["meta"]

        shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(shot)
        img = Image.open(io.BytesIO(shot)).convert("RGB")
        assert img.size == (WIDTH, HEIGHT)
        colors = img.getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 50                     # a rendered page, not a blank
        present = {c for _, c in colors}
        assert (11, 107, 203) in present                                    # header blue: CSS was served
        assert (255, 244, 229) in present                                   # safety-notice background
        assert srv.stop("sigterm") == []
