"""The App plugin in a real headless browser: screenshots of the FiftyOne App with faceset's operators listed.

    .venv/bin/python bench/app_screenshot.py [--out bench/out]      (needs `apt-get install chromium`)

Makes a small dataset in a private embedded database, runs `faceset app` (which registers the plugin), drives
headless Chromium over the DevTools protocol on a pipe (no extra packages): waits for the grid, opens the
operator browser (the ` key), types "faceset", checks the four operators are listed in the page and saves
app_grid.png and app_operators.png.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["faceset: A/B coverage gaps", "faceset: identity review", "faceset: remove near-duplicates", "faceset: balanced export"]


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON)."""

    def __init__(self, chromium: str, profile: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def wire() -> None:  # the pipe ends may already be fds 3/4 (close-on-exec): copy them away first
            a, b = os.dup(cmd_r), os.dup(res_w)
            os.dup2(a, 3, inheritable=True)
            os.dup2(b, 4, inheritable=True)

        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--window-size=1400,900", "about:blank"],
            preexec_fn=wire, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(res_w)
        self._buf, self._id, self.session = b"", 0, None

    def call(self, method: str, timeout: float = 60, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            self._buf += os.read(self._res_r, 1 << 20)
        raise TimeoutError(method)

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def key(self, key: str, code: str) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=code, text=key if kind == "keyDown" else "")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def wait_for(predicate, timeout: float, step: float = 1.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not chromium:
        sys.exit("faceset bench: no chromium on PATH (apt-get install chromium)")
    tmp = Path(tempfile.mkdtemp(prefix="faceset-app-"))
    env = {**os.environ, "FIFTYONE_DATABASE_DIR": str(tmp / "db"), "FIFTYONE_DEFAULT_DATASET_DIR": str(tmp / "media"),
           "FIFTYONE_PLUGINS_DIR": str(tmp / "plugins"), "FIFTYONE_DO_NOT_TRACK": "true"}
    faceset = [sys.executable, "-m", "faceset"]
    name = f"screens-{os.getpid()}"  # unique: FiftyOne may attach to another running database service
    samples = ROOT / "datasets" / "samples"
    subprocess.run([*faceset, "extract", str(samples / "short_hamilton_clip.mp4"), "-d", name, "-s", "A", "-n", "10"], env=env, check=True)
    subprocess.run([*faceset, "extract", *(str(samples / n) for n in ("obama.jpg", "biden.jpg", "two_people.jpg")),
                    "-d", name, "-s", "B"], env=env, check=True)
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    app = subprocess.Popen([*faceset, "app", name, "--port", str(port)], env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = None
    try:
        def up() -> bool:
            try:
                return urllib.request.urlopen(f"http://localhost:{port}/", timeout=5).status == 200
            except OSError:
                return False
        assert wait_for(up, 120), "the App did not come up"
        browser = DevTools(chromium, tmp / "profile")
        target = browser.call("Target.createTarget", url=f"http://localhost:{port}/datasets/{name}")["targetId"]
        browser.session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        browser.call("Page.enable")
        grid = wait_for(lambda: browser.evaluate("document.body.innerText.includes('face_key')"), 90)
        time.sleep(6)  # the grid draws its crops on canvases
        args.out.mkdir(parents=True, exist_ok=True)
        browser.screenshot(args.out / "app_grid.png")
        browser.evaluate("document.body.focus()")
        browser.key("`", "Backquote")
        time.sleep(2)
        browser.call("Input.insertText", text="faceset")
        listed = wait_for(lambda: all(browser.evaluate(f"document.body.innerText.includes({json.dumps(label)})") for label in LABELS), 30)
        time.sleep(1)
        shot = browser.screenshot(args.out / "app_operators.png")
        print(f"{'check':<45} result")
        print(f"{'App shows the dataset fields':<45} {'yes' if grid else 'NO'}")
        for label in LABELS:
            found = browser.evaluate(f"document.body.innerText.includes({json.dumps(label)})")
            print(f"{'operator listed: ' + label:<45} {'yes' if found else 'NO'}")
        print(f"screenshots: {args.out / 'app_grid.png'}, {shot}")
        if not (grid and listed):
            sys.exit(1)
    finally:
        if browser:
            browser.close()
        os.killpg(app.pid, signal.SIGTERM)
        app.wait(timeout=30)
        subprocess.run([sys.executable, "-c", "import sys, fiftyone as fo; [fo.delete_dataset(n) for n in sys.argv[1:] "
                        "if fo.dataset_exists(n)]", name, f"{name}-trash"], env=env, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
