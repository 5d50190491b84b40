"""JupyterLab in a real browser: run notebooks top to bottom, see the plots, move an explorer's controls.

The test starts JupyterLab on 127.0.0.1 (a free port, a token it makes up, settings, workspaces and a copy
of the notebooks in a temporary folder, so the repository's files are never touched), drives Debian's Chromium (``/usr/bin/chromium``, never a downloaded browser) with
Playwright, runs every cell of a notebook through the *Run* menu, checks that the plotly figures and
the explorer are drawn, changes a widget and waits for the explorer to redraw, and saves screenshots
under ``<outputs>/browser-test/``. Every wait is bounded; the server and its kernels are always shut
down. Without Chromium or Playwright the test is skipped, unless ``UNLEARNKIT_REQUIRE_BROWSER=1``
(set by ``.ci/run``) turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
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

from unlearnkit.series.paths import output_root

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("UNLEARNKIT_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("UNLEARNKIT_REQUIRE_BROWSER", "") not in ("", "0")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage"]
SERVER_START_SECONDS = 180
RUN_ALL_SECONDS = 600
"""Bound for one notebook's cells; they find their stages cached when the notebooks ran before (see conftest)."""
REDRAW_SECONDS = 120
TRAIN_SECONDS = 300

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"the browser test is required here (UNLEARNKIT_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lab_settings(folder: Path) -> None:
    """Every cell stays in the page (no windowing), nothing saved behind the test's back, no news."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                       "autoStartDefaultKernel": True},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                            "checkForUpdates": False},
    }
    for name, values in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def status(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def project_copy(folder: Path) -> Path:
    """The series' notebooks and parameter files in a scratch project, so nothing the browser does can
    change the repository's files (the kernels still import this checkout's ``unlearnkit``)."""
    project = folder / "project"
    (project / "notebooks").mkdir(parents=True)
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, project / "notebooks" / notebook.name)
    shutil.copytree(ROOT / "parameters", project / "parameters")
    return project


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (the kernels of this test's server: their connection
    files live in its private runtime folder)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def stop(process: subprocess.Popen, base: str, token: str, runtime: Path) -> None:
    """Ask the server to shut down (it stops its kernels); terminate, then kill, its process group, and
    kill any kernel of this server still running (kernels get process groups of their own)."""
    try:
        request = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(request, timeout=10).close()
        process.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    for pid in processes_mentioning(str(runtime)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("Playwright is not installed (pip install -e '.[dev]')")
    folder = tmp_path_factory.mktemp("jupyterlab")
    lab_settings(folder / "settings")
    project = project_copy(folder)
    port, token = free_port(), secrets.token_hex(24)
    runtime = folder / "runtime"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   # The outputs folder this test process uses: stages cached by earlier runs are reused.
                   "UNLEARNKIT_OUTPUTS": str(output_root()), "UNLEARNKIT_EXPLORERS": "interactive",
                   "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces")}
    log = (folder / "server.log").open("w")
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", *as_root, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={project}",
         f"--LabApp.user_settings_dir={folder / 'settings'}", f"--LabApp.workspaces_dir={folder / 'workspaces'}"],
        cwd=project, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not status(f"{base}/api/status?token={token}"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{(folder / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield {"base": base, "token": token, "log": folder / "server.log", "profile": folder / "chromium"}
    finally:
        stop(process, base, token, runtime)
        log.close()


@pytest.fixture(scope="module")
def page(jupyterlab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(jupyterlab["profile"]), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1500, "height": 1800})
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = output_root() / "browser-test"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_and_run_all(page, jupyterlab, notebook: str, last_output: str, screenshots: Path) -> None:
    """Open ``notebook``, run every cell from the Run menu, wait until an output shows ``last_output``."""
    # ``reset`` opens a fresh workspace: only this notebook, not the tabs an earlier test left open.
    page.goto(f"{jupyterlab['base']}/lab/tree/{notebook}?reset&token={jupyterlab['token']}", timeout=120_000)
    panel = page.locator(".jp-NotebookPanel:visible").first  # the notebook's tab; hidden tabs stay in the page
    panel.locator(".jp-Notebook").first.wait_for(state="visible", timeout=120_000)
    panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=120_000)
    started = panel.locator(".jp-InputPrompt", has_text="[*]").or_(panel.locator(".jp-InputPrompt", has_text="[1]"))
    for _ in range(3):  # a click before the notebook has focus runs nothing: focus it, retry until a cell starts
        panel.locator(".jp-Cell").first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
        try:
            started.first.wait_for(timeout=30_000)
            break
        except Exception:
            page.keyboard.press("Escape")
    done = panel.locator(".jp-OutputArea-output", has_text=last_output)
    tracebacks = panel.locator(".jp-OutputArea-output", has_text="Traceback (most recent call last)")
    deadline = time.monotonic() + RUN_ALL_SECONDS
    while not done.count() and not tracebacks.count():
        if page.locator(".jp-Dialog").count():  # a kernel chooser despite autoStartDefaultKernel: take the default
            page.locator(".jp-Dialog .jp-mod-accept").first.click()
        if time.monotonic() > deadline:
            page.screenshot(path=str(screenshots / f"failed-{Path(notebook).stem}.png"))
            errors = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            shown = "\n---\n".join(errors.all_inner_texts())[-4000:]
            raise AssertionError(f"{notebook}: {last_output!r} never appeared; stderr outputs:\n{shown}\n"
                                 f"server log:\n{jupyterlab['log'].read_text()[-2000:]}")
        if int(time.monotonic() - deadline) % 60 == 0:  # how it looks while it waits (for a hang in CI)
            page.screenshot(path=str(screenshots / f"running-{Path(notebook).stem}.png"))
        page.wait_for_timeout(1000)
    assert tracebacks.count() == 0, f"{notebook}: a cell raised:\n{tracebacks.first.inner_text()[:3000]}"


def plots_drawn(page) -> int:
    """plotly figures that rendered an SVG with at least one trace."""
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .filter(p => p.querySelector('.main-svg') && p.querySelectorAll('.trace, .imagelayer image').length > 0)
        .length""")


def title_of(explorer) -> str:
    return explorer.locator(".js-plotly-plot .gtitle").first.text_content(timeout=30_000) or ""


def set_slider(explorer, description: str, value: str) -> None:
    """Type ``value`` into a slider's readout and press Enter, as a user would."""
    readout = explorer.locator(".widget-slider", has_text=description).locator(".widget-readout")
    readout.scroll_into_view_if_needed()
    readout.click()
    readout.press("Control+a")
    readout.type(value)
    readout.press("Enter")


def wait_until_changed(page, locator_text, before: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = locator_text()
        if now != before:
            return now
        page.wait_for_timeout(500)
    raise AssertionError(f"the explorer did not redraw within {seconds:.0f} s (still {before!r})")


def test_the_trigger_designer_redraws_and_trains_in_jupyterlab(page, jupyterlab, screenshots):
    open_and_run_all(page, jupyterlab, "notebooks/01_poison.ipynb", "poison checks passed", screenshots)
    assert plots_drawn(page) >= 4, "the notebook's figures and the designer's are drawn"
    designer = page.locator(".unlearnkit-trigger-designer").first
    designer.scroll_into_view_if_needed()
    designer.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    page.screenshot(path=str(screenshots / "01_poison_page.png"))
    before = title_of(designer)
    assert "3px" in before, before

    set_slider(designer, "patch size", "6")
    after = wait_until_changed(page, lambda: title_of(designer), before, REDRAW_SECONDS)
    assert "6px" in after, after
    designer.screenshot(path=str(screenshots / "01_trigger_designer_patch6.png"))

    designer.get_by_role("button", name="train and measure").click()
    status = designer.locator(".unlearnkit-status")
    status.filter(has_text="attack success").wait_for(timeout=TRAIN_SECONDS * 1000)
    assert "6px" in status.inner_text() and "clean accuracy" in status.inner_text()
    designer.locator(".js-plotly-plot .gtitle", has_text="attack success").first.wait_for(timeout=REDRAW_SECONDS * 1000)
    designer.screenshot(path=str(screenshots / "01_trigger_designer_trained.png"))


def test_the_ssd_explorer_follows_its_sliders_in_jupyterlab(page, jupyterlab, screenshots):
    open_and_run_all(page, jupyterlab, "notebooks/05_ssd_importance.ipynb", "importance checks passed", screenshots)
    assert plots_drawn(page) >= 2, "the histogram and the explorer are drawn"
    explorer = page.locator(".unlearnkit-ssd-explorer").first
    explorer.scroll_into_view_if_needed()
    explorer.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    before = title_of(explorer)
    assert "a = 10," in before, before
    explorer.screenshot(path=str(screenshots / "05_ssd_explorer_a10.png"))

    set_slider(explorer, "a (selection)", "1000")
    after = wait_until_changed(page, lambda: title_of(explorer), before, REDRAW_SECONDS)
    assert "a = 1e+03" in after, after
    assert "a = 1e+03" in explorer.locator(".unlearnkit-status").inner_text()
    explorer.screenshot(path=str(screenshots / "05_ssd_explorer_a1000.png"))
    page.screenshot(path=str(screenshots / "05_ssd_page.png"))
