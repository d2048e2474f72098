"""The App workbench in a real headless browser (Debian's chromium + chromium-driver, driven by selenium).

    .venv/bin/python bench/app_workbench.py [--out bench/out] [--img docs/img]
        (needs `apt-get install chromium chromium-driver` and `pip install selenium`; nothing is downloaded)

Makes a small face dataset in a private embedded database (the sample clip as A, photos as B), runs
`faceset app` (plugin registered, grid and A/B coverage panel side by side) and drives the page like a user:
1. the coverage panel draws A's and B's yaw x pitch grids;
2. a click on A's fullest cell puts exactly that cell's faces in the grid (the grid's "N samples" equals the
   cell's count), "Back to all faces" brings the whole dataset back;
3. three faces are selected with the tiles' checkboxes, the operator "move selected faces to trash" runs from
   the operator browser: the grid loses exactly those three; "undo last trash" brings them back.
4. the panel's "Review identity B" shows B worst-first with the other people pre-selected; "Trash selected"
   removes exactly them, "Undo trash" restores them;
5. "UMAP of identity embeddings" is scheduled (the Execute button's menu) and the delegated-operation
   service `faceset app` started completes it.
Screenshots: app_panel.png, app_panel_cell.png, app_trash_prompt.png, app_trash_result.png,
app_identity_review.png, app_trashed.png (docs/img, where docs/app.md shows them).
Prints a table of checks and exits 1 if any fails. tests/curate/app/test_app_browser.py runs it when chromium is there.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], Any], timeout: float, step: float = 0.5) -> Any:
    """Poll until the predicate gives something truthy (returned) or the time is up (None)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - the page is still changing under us
            value = None
        if value:
            return value
        time.sleep(step)
    return None


def browser(width: int = 1700, height: int = 1100):
    """Headless Debian chromium through its own chromedriver (selenium), no browser download."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--disable-gpu"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


class AppPage:
    """The FiftyOne App page and the few things a user does on it."""

    def __init__(self, driver: Any, url: str):
        self.d = driver
        self.d.get(url)

    def js(self, script: str, *args: Any) -> Any:
        return self.d.execute_script(script, *args)

    def grid_count(self) -> int | None:
        """The grid's "N samples" (None while it loads)."""
        found = re.findall(r"(\d[\d,]*) samples?\b", self.js("return document.body.innerText"))
        return int(found[0].replace(",", "")) if found else None

    def dismiss_popups(self) -> None:
        from selenium.webdriver.common.by import By

        for button in self.d.find_elements(By.XPATH, "//*[text()='Dismiss']"):
            try:
                button.click()
            except Exception:  # noqa: BLE001 - already gone
                pass

    def plot(self) -> Any:
        return self.js("return document.querySelector('.js-plotly-plot')")

    def cell_counts(self, trace: int) -> list[list[int]]:
        return self.js("return document.querySelector('.js-plotly-plot').data[arguments[0]].customdata", trace)

    def click_cell(self, trace: int, col: int, row: int) -> None:
        """A real mouse click on one heatmap cell (plotly maps it to the cell's x/y labels)."""
        from selenium.webdriver.common.action_chains import ActionChains

        x, y, w, h = self.js("""
            const g = document.querySelector('.js-plotly-plot'), L = g._fullLayout;
            const xa = L[arguments[0] ? 'xaxis' + (arguments[0] + 1) : 'xaxis'];
            const ya = L[arguments[0] ? 'yaxis' + (arguments[0] + 1) : 'yaxis'];
            const r = g.getBoundingClientRect();
            return [xa._offset + xa.l2p(arguments[1]), ya._offset + ya.l2p(arguments[2]), r.width, r.height];""",
                             trace, col, row)
        plot = self.plot()
        ActionChains(self.d).move_to_element_with_offset(plot, int(x - w / 2), int(y - h / 2)).click().perform()

    def click_text(self, text: str) -> None:
        from selenium.webdriver.common.by import By

        button = self.d.find_element(By.XPATH, f"//button[normalize-space()='{text}'] | //*[normalize-space(text())='{text}']")
        button.click()

    def select_tiles(self, n: int) -> None:
        """Tick the selection checkbox of the first n tiles of the grid, as a user does (hover, click)."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        tiles = [t for t in self.d.find_elements(By.CSS_SELECTOR, "canvas") if t.size["width"] > 60][:n]
        for tile in tiles:  # the checkbox shows in the tile's top-left corner while the pointer is over it
            ActionChains(self.d).move_to_element(tile).perform()
            time.sleep(0.4)
            ActionChains(self.d).move_to_element_with_offset(tile, -int(tile.size["width"] / 2) + 12,
                                                            -int(tile.size["height"] / 2) + 12).click().perform()
            time.sleep(0.4)

    def ticked(self) -> int:
        """How many tiles of the grid show a ticked selection checkbox."""
        return int(self.js("return document.querySelectorAll('input[type=checkbox][data-cy^=looker-checkbox]:checked')"
                           ".length"))

    def run_operator(self, label: str, shot: Path | None = None, schedule: bool = False) -> str:
        """Open the operator browser (the ` key), pick the operator by its label and execute it (or schedule it
        as a delegated operation: the Execute button's menu)."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self.js("document.activeElement && document.activeElement.blur()")
        ActionChains(self.d).send_keys("`").perform()
        box = wait_for(lambda: self.d.find_element(By.CSS_SELECTOR, "input[placeholder]"), 10)
        time.sleep(0.5)
        ActionChains(self.d).send_keys(label).perform()
        time.sleep(1.0)
        ActionChains(self.d).send_keys(Keys.ENTER).perform()
        execute = wait_for(lambda: [b for b in self.d.find_elements(By.XPATH, "//button[normalize-space()='Execute']")
                                    if b.is_displayed()], 20)
        if not execute:
            raise RuntimeError(f"no Execute button for {label!r} (operator browser input: {box is not None})")
        time.sleep(0.5)
        if schedule:  # the arrow beside Execute opens the execution options
            execute[0].find_element(By.XPATH, "following-sibling::button[1]").click()
            option = wait_for(lambda: [e for e in self.d.find_elements(By.XPATH, "//*[normalize-space(text())='Schedule']")
                                       if e.is_displayed()], 10)
            option[0].click()
            time.sleep(0.5)
            execute = wait_for(lambda: [b for b in self.d.find_elements(By.XPATH, "//button[normalize-space()='Schedule']")
                                        if b.is_displayed()], 10)
        if shot is not None:
            self.d.save_screenshot(str(shot))
        prompt = self.js("return document.body.innerText")
        execute[0].click()
        return prompt

    def close_result(self) -> None:
        """Close the operator's result dialog."""
        from selenium.webdriver.common.by import By

        close = wait_for(lambda: [b for b in self.d.find_elements(By.XPATH, "//button[normalize-space()='Close']")
                                  if b.is_displayed()], 20)
        if close:
            close[0].click()
            time.sleep(0.5)


def make_dataset(env: dict[str, str], name: str) -> None:
    """The sample clip's faces as A, a few photos as B, through the CLI."""
    faceset = [sys.executable, "-m", "faceset"]
    samples = ROOT / "datasets" / "samples"
    subprocess.run([*faceset, "extract", str(samples / "short_hamilton_clip.mp4"), "-d", name, "-s", "A", "-n", "10"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*faceset, "extract", *(str(samples / n) for n in ("obama.jpg", "biden.jpg", "two_people.jpg")),
                    "-d", name, "-s", "B"], env=env, check=True, stdout=subprocess.DEVNULL)


def delegated_runs(env: dict[str, str], dataset: str) -> dict[str, str]:
    """Run state of each delegated operation of a dataset (read from the database by a separate process)."""
    code = ("import sys, json; from fiftyone.operators.delegated import DelegatedOperationService as S; "
            "print(json.dumps({o.operator.rsplit('/', 1)[-1]: str(o.run_state) "
            "for o in S().list_operations(dataset_name=sys.argv[1])}))")
    run = subprocess.run([sys.executable, "-c", code, dataset], env=env, capture_output=True, text=True)
    import json

    lines = [l for l in run.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def drive(url: str, out: Path, env: dict[str, str] | None = None) -> list[tuple[str, bool, str]]:
    """The user's session on the App; returns (check, passed, detail) rows."""
    checks: list[tuple[str, bool, str]] = []
    check = lambda what, ok, detail="": checks.append((what, bool(ok), detail))
    d = browser()
    try:
        page = AppPage(d, url)
        drawn = wait_for(lambda: page.plot() is not None and page.cell_counts(0), 120)
        total = wait_for(page.grid_count, 60)
        time.sleep(3)
        page.dismiss_popups()
        time.sleep(1)
        check("panel draws A's and B's grids", drawn, f"grid shows {total} samples")
        if not drawn:
            d.save_screenshot(str(out / "app_panel.png"))
            return checks
        d.save_screenshot(str(out / "app_panel.png"))

        counts = page.cell_counts(0)
        row, col = max(((r, c) for r in range(len(counts)) for c in range(len(counts[0]))), key=lambda rc: counts[rc[0]][rc[1]])
        want = counts[row][col]
        page.click_cell(0, col, row)
        got = wait_for(lambda: page.grid_count() if page.grid_count() == want else None, 30)
        time.sleep(2)
        d.save_screenshot(str(out / "app_panel_cell.png"))
        check("click on A's fullest cell: grid count = cell count", got == want, f"cell {want}, grid {page.grid_count()}")
        shown = wait_for(lambda: f"showing {want} faces" in page.js("return document.body.innerText"), 10)
        check("panel says which cell is shown", shown)
        page.click_text("Back to all faces")
        back = wait_for(lambda: page.grid_count() == total, 30)
        check("'Back to all faces' restores the grid", back, f"grid {page.grid_count()} of {total}")
        time.sleep(2)

        page.select_tiles(3)
        prompt = page.run_operator("move selected faces to trash", shot=out / "app_trash_prompt.png")
        check("three faces ticked in the grid reach the operator", "Move 3 selected faces" in prompt,
              next((l for l in prompt.splitlines() if "selected faces" in l), "no prompt"))
        trashed = wait_for(lambda: page.grid_count() == total - 3, 60)
        time.sleep(2)
        d.save_screenshot(str(out / "app_trash_result.png"))
        check("trash (operator): the grid loses exactly those faces", trashed, f"grid {page.grid_count()} (was {total})")
        page.close_result()
        page.run_operator("undo last trash")
        undone = wait_for(lambda: page.grid_count() == total, 60)
        page.close_result()
        check("undo (operator): they are back", undone, f"grid {page.grid_count()} of {total}")

        # "delete the wrong people": open the review, glance, press one button
        text = lambda: page.js("return document.body.innerText")
        n_b = int(re.findall(r"B (\d+) faces", text())[0])
        page.click_text("Review identity B")
        flagged = wait_for(lambda: re.findall(r"(\d+)\*{0,2} flagged as another person", text()), 60)
        shown = wait_for(lambda: page.grid_count() if page.grid_count() == n_b else None, 30)
        time.sleep(3)
        d.save_screenshot(str(out / "app_identity_review.png"))
        k = int(flagged[0]) if flagged else 0
        ticked = wait_for(lambda: page.ticked() == k, 30)  # the pre-selection reaches the grid's checkboxes
        check("identity review B: faces worst-first, wrong ones pre-selected", k > 0 and shown == n_b and ticked,
              f"{k} flagged of {shown} B faces, {page.ticked()} ticked in the grid")
        page.click_text("Trash selected")
        gone = wait_for(lambda: page.grid_count() == shown - k, 60)
        time.sleep(2)
        d.save_screenshot(str(out / "app_trashed.png"))
        check("'Trash selected' removes exactly the flagged faces", gone, f"grid {page.grid_count()} of {shown}")
        page.click_text("Undo trash")
        back = wait_for(lambda: page.grid_count() == shown, 60)
        check("'Undo trash' brings them back", back, f"grid {page.grid_count()} of {shown}")

        # a long job scheduled as a delegated operation: the service `faceset app` started runs it
        dataset = url.rstrip("/").rsplit("/", 1)[-1]
        page.run_operator("UMAP of identity", schedule=True)
        time.sleep(1)
        page.close_result()
        state = wait_for(lambda: (lambda r: r if r.get("umap_faces") in ("completed", "failed") else None)(
            delegated_runs(env or dict(os.environ), dataset)), 180, 2.0) or delegated_runs(env or dict(os.environ), dataset)
        check("UMAP scheduled from the App runs delegated", state.get("umap_faces") == "completed",
              f"delegated operations: {state}")
        return checks
    finally:
        d.quit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--img", type=Path, default=ROOT / "docs" / "img", help="where the screenshots go")
    ap.add_argument("--url", help="drive an App that is already running on this dataset URL instead")
    ap.add_argument("--dataset", help="use this existing face dataset (of the current FiftyOne database) instead of "
                                      "making one; it is changed and restored by the run")
    args = ap.parse_args()
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        sys.exit("faceset bench: needs chromium and chromedriver on PATH (apt-get install chromium chromium-driver)")
    args.out.mkdir(parents=True, exist_ok=True)
    args.img.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if args.url:
        checks = drive(args.url, args.img)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="faceset-app-"))
        env = dict(os.environ)
        if not args.dataset:  # a private database
            env.update({"FIFTYONE_DATABASE_DIR": str(tmp / "db"), "FIFTYONE_DEFAULT_DATASET_DIR": str(tmp / "media"),
                        "FIFTYONE_PLUGINS_DIR": str(tmp / "plugins"), "FIFTYONE_DO_NOT_TRACK": "true"})
        name = args.dataset or f"workbench-{os.getpid()}"  # unique: FiftyOne may attach to another database service
        if not args.dataset:
            make_dataset(env, name)
        with socket.socket() as s:
            s.bind(("localhost", 0))
            port = s.getsockname()[1]
        app = subprocess.Popen([sys.executable, "-m", "faceset", "app", name, "--port", str(port)], env=env,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            up = lambda: urllib.request.urlopen(f"http://localhost:{port}/", timeout=5).status == 200
            if not wait_for(up, 120, 1.0):
                sys.exit("faceset bench: the App did not come up")
            checks = drive(f"http://localhost:{port}/datasets/{name}", args.img, env)
        finally:
            os.killpg(app.pid, signal.SIGTERM)
            app.wait(timeout=30)
            if not args.dataset:
                subprocess.run([sys.executable, "-c", "import sys, fiftyone as fo; [fo.delete_dataset(n) for n in "
                                "sys.argv[1:] if fo.dataset_exists(n)]", name, f"{name}-trash"], env=env, check=False)
            shutil.rmtree(tmp, ignore_errors=True)
    lines = [f"{'check':<62} {'result':<6} detail"]
    lines += [f"{what:<62} {'yes' if ok else 'NO':<6} {detail}" for what, ok, detail in checks]
    lines.append(f"({time.time() - started:.0f} s, headless chromium via selenium; screenshots in {args.img.relative_to(ROOT) if args.img.is_relative_to(ROOT) else args.img})")
    text = "\n".join(lines)
    print(text)
    (args.out / "app_workbench.txt").write_text(text + "\n")
    if not checks or not all(ok for _, ok, _ in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
