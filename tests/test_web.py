"""``stylize serve``: the endpoints in-process, and the page in Debian's Chromium (skipped where it is missing)."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TEST_STYLE

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from stylize.web import THUMBNAIL_SIDE, create_app  # noqa: E402


@pytest.fixture()
def client(catalogue: Path) -> TestClient:
    return TestClient(create_app("cpu", hosts=("testserver",)))


def jpeg_bytes(rgb: np.ndarray, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", **save)
    return buffer.getvalue()


def upload(client: TestClient, data: bytes, name: str = "portrait.jpg") -> dict:
    response = client.post("/api/photos", files={"photo": (name, data, "image/jpeg")})
    assert response.status_code == 200, response.text
    return response.json()


def test_page_and_styles(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "Drop a photo here" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere: offline
    assert [s["name"] for s in client.get("/api/styles").json()] == [TEST_STYLE]


def test_upload_thumbnail_view_and_full_size_download(client: TestClient, astronaut: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Test camera"
    photo = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, :200]], axis=1))  # 712 x 512
    from stylize.image_io import srgb_profile

    kept = upload(client, jpeg_bytes(photo, quality=95, exif=exif.tobytes(), icc_profile=srgb_profile()))
    assert (kept["width"], kept["height"]) == (712, 512)
    thumb = Image.open(io.BytesIO(client.get(f"/api/photos/{kept['id']}/thumbnail/{TEST_STYLE}").content))
    assert max(thumb.size) == THUMBNAIL_SIDE
    plain = client.get(f"/api/photos/{kept['id']}/view/{TEST_STYLE}?faces=false")
    weak = client.get(f"/api/photos/{kept['id']}/view/{TEST_STYLE}?faces=false&strength=0.2")
    original = np.asarray(Image.open(io.BytesIO(client.get(f"/api/photos/{kept['id']}/original").content)), float)
    full, light = (np.asarray(Image.open(io.BytesIO(r.content)), float) for r in (plain, weak))
    assert np.abs(light - original).mean() < 0.5 * np.abs(full - original).mean()  # the strength slider works
    download = client.get(f"/api/photos/{kept['id']}/download/{TEST_STYLE}?strength=0.8&hd=tiled")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="portrait_{TEST_STYLE}.jpg"'
    result = Image.open(io.BytesIO(download.content))
    assert result.size == (712, 512)  # full resolution
    from PIL import ImageCms

    assert result.getexif()[0x010F] == "Test camera"
    assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(result.info["icc_profile"])))
    assert "stylize" in result.info.get("xmp", b"").decode("utf-8", "replace")  # provenance, as the CLI writes


@pytest.mark.parametrize("case, status, message", [
    ("not_an_image", 400, "notes.jpg: not an image Pillow can read"),
    ("too_many_pixels", 413, "big.jpg"),
    ("too_many_bytes", 413, "upload limit"),
    ("far_too_many_bytes", 413, "uploads are limited to 0.2 MB"),
    ("unknown_style", 404, "unknown style 'nope'"),
    ("bad_option", 400, "strength must be between 0 and 1"),
    ("forgotten_photo", 404, "upload it again"),
])
def test_errors_are_the_clis_one_line_messages(catalogue: Path, astronaut: np.ndarray, case: str, status: int,
                                               message: str) -> None:
    client = TestClient(create_app("cpu", max_pixels=300_000, max_upload_mb=0.2, hosts=("testserver",)))
    if case == "not_an_image":
        response = client.post("/api/photos", files={"photo": ("notes.jpg", b"hello, not a photo", "image/jpeg")})
    elif case in ("too_many_pixels", "too_many_bytes", "far_too_many_bytes"):
        big = np.tile(astronaut, (2, 2, 1))  # 1024 x 1024: over 300,000 pixels
        data = {"too_many_pixels": jpeg_bytes(big, quality=60), "too_many_bytes": b"\xff" * 300_000,
                "far_too_many_bytes": b"\xff" * 3_000_000}[case]  # the last is refused before it is read
        response = client.post("/api/photos", files={"photo": ("big.jpg", data, "image/jpeg")})
    else:
        key = upload(client, jpeg_bytes(astronaut))["id"] if case != "forgotten_photo" else "0" * 32
        style, query = ("nope", "") if case == "unknown_style" else (TEST_STYLE, "?strength=3" if case == "bad_option"
                                                                        else "")
        response = client.get(f"/api/photos/{key}/view/{style}{query}")
    assert response.status_code == status
    assert message in response.json()["error"]
    assert "stylize-upload-" not in response.json()["error"]  # the user's file name, not our temporary folder


def test_other_origins_and_host_names_are_refused(client: TestClient, astronaut: np.ndarray) -> None:
    data = {"photo": ("p.jpg", jpeg_bytes(astronaut), "image/jpeg")}
    assert client.post("/api/photos", files=data, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/api/styles", headers={"Host": "evil.example"}).status_code == 403  # DNS rebinding
    assert client.post("/api/photos", files=data, headers={"Origin": "http://testserver"}).status_code == 200
    assert "access-control-allow-origin" not in client.get("/api/styles").headers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                    reason="Debian's chromium and chromium-driver are not installed (apt-get install chromium "
                           "chromium-driver)")
def test_the_page_in_a_real_browser(catalogue: Path, tmp_path: Path) -> None:
    """Upload the sample portrait, see a thumbnail per style, move the strength slider, download, screenshot."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "stylize.cli", "serve", "--port", str(port), "--device", "cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        wait = WebDriverWait(browser, 120)
        deadline = time.time() + 60
        while True:  # the server takes a moment to start
            try:
                browser.get(f"http://127.0.0.1:{port}/")
                if "stylize" in browser.title:
                    break
            except Exception:  # noqa: BLE001 -- connection refused until it listens
                pass
            assert time.time() < deadline and server.poll() is None, server.stdout.read() if server.stdout else ""
            time.sleep(0.5)
        wait.until(lambda b: "styles ready" in b.find_element(By.ID, "status").text)
        sample = Path(__file__).resolve().parents[1] / "samples" / "astronaut.jpg"
        browser.find_element(By.ID, "file").send_keys(str(sample))
        wait.until(lambda b: "Pick a style" in b.find_element(By.ID, "status").text)
        thumbs = browser.find_elements(By.CSS_SELECTOR, ".thumb img")
        assert len(thumbs) == 1
        assert all(browser.execute_script("return arguments[0].naturalWidth", t) > 0 for t in thumbs)
        thumbs[0].click()
        wait.until(lambda b: b.execute_script("return document.getElementById('after').naturalWidth") > 0)
        first_view = browser.execute_script("return document.getElementById('after').src")
        browser.execute_script("const s = document.getElementById('strength'); s.value = 0.4;"
                               "s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'));")
        wait.until(lambda b: b.execute_script("return document.getElementById('after').src") != first_view)
        assert browser.find_element(By.ID, "strength-value").text == "0.40"
        browser.find_element(By.ID, "download").click()
        wait.until(lambda b: any(p.suffix == ".jpg" for p in downloads.iterdir()))
        saved = next(p for p in downloads.iterdir() if p.suffix == ".jpg")
        assert saved.name == f"astronaut_{TEST_STYLE}.jpg"
        assert Image.open(saved).size == Image.open(sample).size  # the full-resolution result
        browser.save_screenshot(str(tmp_path / "page.png"))
        assert Image.open(tmp_path / "page.png").size[0] >= 1000
    finally:
        browser.quit()
        server.terminate()
        server.wait(timeout=30)
