"""The web page's thumbnails, timed as a person sees them: Chromium uploads a 12 MP portrait to `stylize serve`.

    apt-get install chromium chromium-driver
    .venv/bin/python -m benchmarks.web_thumbnails --megapixels 12 [--screenshot benchmarks/sheets/serve.jpg]

The photo is chosen ``--pick-seconds`` (5) after the page opens, as a person would. Prints the seconds from
choosing the file to the first thumbnail on screen, to every thumbnail, and to the
first painted picture in the large view (a quick one at thumbnail size: the full view follows the strip); then
the same for a second upload of the same photo (every style loaded).
Target (issue "The web page"): every thumbnail in at most 10 s on 2 cores, the first in at most 1 s.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from benchmarks.end_to_end import portrait
from benchmarks.machine import machine_line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed_upload(browser, photo: Path, styles: int, timeout: float = 600) -> dict[str, float]:  # noqa: ANN001
    """Seconds from choosing ``photo`` to the first thumbnail, to all ``styles`` of them, and to the large view."""
    from selenium.webdriver.common.by import By

    marks: dict[str, float] = {}
    browser.find_element(By.ID, "file").send_keys(str(photo))
    began = time.perf_counter()
    while len(marks) < 3:
        assert time.perf_counter() - began < timeout, f"the page did not finish: {marks}"
        loaded = browser.execute_script(
            "return [...document.querySelectorAll('.thumb img')].filter((i) => i.naturalWidth > 0).length")
        view = browser.execute_script("return !document.getElementById('compare').classList.contains('pending')"
                                      " && document.getElementById('after').naturalWidth > 0")
        now = time.perf_counter() - began
        if loaded >= 1:
            marks.setdefault("first thumbnail", now)
        if loaded >= styles:
            marks.setdefault("every thumbnail", now)
        if view:
            marks.setdefault("first large view", now)
        time.sleep(0.02)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megapixels", type=float, default=12)
    parser.add_argument("--screenshot", type=Path, help="also save the page, as it is at the end, here (JPEG)")
    parser.add_argument("--pick-seconds", type=float, default=5.0,
                        help="between the page opening and the photo being chosen (the server warms up meanwhile)")
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from stylize.catalogue import list_styles

    styles = len(list_styles())
    print(machine_line("onnxruntime"))
    print(f"# {styles} styles, a {args.megapixels:g} MP portrait (the astronaut, scaled)")
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "portrait.jpg"
        Image.fromarray(portrait(args.megapixels)).save(photo, quality=92)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "stylize.cli", "serve", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or ""
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            for _ in range(240):
                try:
                    browser.get(f"http://127.0.0.1:{port}/")
                    if "styles ready" in browser.execute_script("return document.getElementById('status').textContent"):
                        break
                except Exception:  # noqa: BLE001 -- connection refused until the server listens
                    pass
                time.sleep(0.5)
            time.sleep(args.pick_seconds)  # a person opening the page takes this long to pick a photo
            for run in ("first upload", "second upload"):
                marks = timed_upload(browser, photo, styles)
                print(f"{run}: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in marks.items()))
                for _ in range(1200):  # the full view, painted after the strip, finishes before the next upload
                    if browser.execute_script("return getComputedStyle(document.getElementById('busy')).display")\
                            == "none":
                        break
                    time.sleep(0.05)
            if args.screenshot:
                shot = Path(folder) / "page.png"
                browser.save_screenshot(str(shot))
                Image.open(shot).convert("RGB").save(args.screenshot, quality=88)
        finally:
            browser.quit()
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
