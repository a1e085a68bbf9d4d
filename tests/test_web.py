"""``stylize serve``: the endpoints in-process, and the page in Debian's Chromium (skipped where it is missing)."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from conftest import TEST_STYLE, install_catalogue_rows, install_shipped_style, shipped_row_pair

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from stylize import web  # noqa: E402
from stylize.options import DEFAULT_MAX_PIXELS  # noqa: E402
from stylize.web import (THUMBNAIL_SIDE, attachment, create_app, host_name, own_host_names, page_url,  # noqa: E402
                         server, upload_name)


@pytest.fixture()
def client(catalogue: Path) -> TestClient:
    return TestClient(create_app("cpu", hosts=("testserver",)))


def jpeg_bytes(rgb: np.ndarray, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", **save)
    return buffer.getvalue()


def post_photo(client: TestClient, data: bytes, name: str = "portrait.jpg", **headers: str):  # noqa: ANN201
    """The page's upload: the file is the body, its name a query parameter."""
    return client.post(f"/api/photos?name={quote(name)}", content=data, headers=headers)


def upload(client: TestClient, data: bytes, name: str = "portrait.jpg") -> dict:
    response = post_photo(client, data, name)
    assert response.status_code == 200, response.text
    return response.json()


def test_page_and_styles(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "Drop a photo here" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere: offline
    assert [s["name"] for s in client.get("/api/styles").json()] == [TEST_STYLE]
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml" and b"<svg" in icon.content


def test_upload_thumbnail_view_and_full_size_download(client: TestClient, astronaut: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Test camera"
    photo = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, :200]], axis=1))  # 712 x 512
    from stylize.image_io import srgb_profile

    kept = upload(client, jpeg_bytes(photo, quality=95, exif=exif.tobytes(), icc_profile=srgb_profile()))
    assert (kept["width"], kept["height"]) == (712, 512) and kept["exif"] and kept["colour_profile"]
    bare = upload(client, jpeg_bytes(astronaut))
    assert not bare["exif"] and not bare["colour_profile"]  # the page does not claim to keep what is not there
    thumb = Image.open(io.BytesIO(client.get(f"/api/photos/{kept['id']}/thumbnail/{TEST_STYLE}").content))
    assert max(thumb.size) == THUMBNAIL_SIDE
    plain = client.get(f"/api/photos/{kept['id']}/view/{TEST_STYLE}?faces=false")
    weak = client.get(f"/api/photos/{kept['id']}/view/{TEST_STYLE}?faces=false&strength=0.2")
    original = np.asarray(Image.open(io.BytesIO(client.get(f"/api/photos/{kept['id']}/original").content)), float)
    full, light = (np.asarray(Image.open(io.BytesIO(r.content)), float) for r in (plain, weak))
    assert np.abs(light - original).mean() < 0.5 * np.abs(full - original).mean()  # the strength slider works
    download = client.get(f"/api/photos/{kept['id']}/download/{TEST_STYLE}?strength=0.8&hd=tiled")
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith(f'attachment; filename="portrait_{TEST_STYLE}.jpg"')
    result = Image.open(io.BytesIO(download.content))
    assert result.size == (712, 512)  # full resolution
    from PIL import ImageCms

    assert result.getexif()[0x010F] == "Test camera"
    assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(result.info["icc_profile"])))
    assert "stylize" in result.info.get("xmp", b"").decode("utf-8", "replace")  # provenance, as the CLI writes


@pytest.mark.parametrize("case, status, message", [
    ("not_an_image", 400, "notes.jpg: not an image Pillow can read"),
    ("too_many_pixels", 413, "big.jpg"),
    ("too_many_bytes", 413, "uploads are limited to 0.2 MB"),
    ("far_too_many_bytes", 413, "uploads are limited to 0.2 MB"),
    ("unknown_style", 404, "unknown style 'nope'"),
    ("bad_option", 400, "strength must be between 0 and 1"),
    ("forgotten_photo", 404, "upload it again"),
])
def test_errors_are_the_clis_one_line_messages(catalogue: Path, astronaut: np.ndarray, case: str, status: int,
                                               message: str) -> None:
    client = TestClient(create_app("cpu", max_pixels=300_000, max_upload_mb=0.2, hosts=("testserver",)))
    if case == "not_an_image":
        response = post_photo(client, b"hello, not a photo", "notes.jpg")
    elif case in ("too_many_pixels", "too_many_bytes", "far_too_many_bytes"):
        big = np.tile(astronaut, (2, 2, 1))  # 1024 x 1024: over 300,000 pixels
        data = {"too_many_pixels": jpeg_bytes(big, quality=60), "too_many_bytes": b"\xff" * 300_000,
                "far_too_many_bytes": b"\xff" * 3_000_000}[case]  # the last is refused before it is read
        response = post_photo(client, data, "big.jpg")
    else:
        key = upload(client, jpeg_bytes(astronaut))["id"] if case != "forgotten_photo" else "0" * 32
        style, query = ("nope", "") if case == "unknown_style" else (TEST_STYLE, "?strength=3" if case == "bad_option"
                                                                        else "")
        response = client.get(f"/api/photos/{key}/view/{style}{query}")
    assert response.status_code == status
    assert message in response.json()["error"]
    assert "stylize-upload-" not in response.json()["error"]  # the user's file name, not our temporary folder


def test_other_origins_and_host_names_are_refused(client: TestClient, astronaut: np.ndarray) -> None:
    data = jpeg_bytes(astronaut)
    assert post_photo(client, data, Origin="https://evil.example").status_code == 403
    assert client.get("/api/styles", headers={"Host": "evil.example"}).status_code == 403  # DNS rebinding
    assert post_photo(client, data, Origin="http://testserver").status_code == 200
    assert "access-control-allow-origin" not in client.get("/api/styles").headers


def test_a_server_on_every_address_still_refuses_foreign_host_names(catalogue: Path, astronaut: np.ndarray) -> None:
    """Bound to 0.0.0.0, a page on evil.example that resolves to this machine must still be refused (DNS
    rebinding), unless the user named that host with --allow-host."""
    names = own_host_names("0.0.0.0")
    assert "localhost" in names and socket.gethostname().lower() in names and "evil.example" not in names
    for allowed, status in ((names, 403), (own_host_names("0.0.0.0", ["evil.example"]), 200)):
        client = TestClient(create_app("cpu", hosts=allowed), base_url="http://evil.example")
        response = post_photo(client, jpeg_bytes(astronaut), Origin="http://evil.example")
        assert response.status_code == status, response.text
    assert TestClient(create_app("cpu", hosts=names), base_url="http://localhost:8765").get("/").status_code == 200
    assert host_name("[::1]:8765") == "[::1]" and host_name("LocalHost") == "localhost"
    assert page_url("::1", 8765) == "http://[::1]:8765/" and page_url("0.0.0.0", 80) == "http://127.0.0.1:80/"


@pytest.mark.parametrize("name", ["фото.jpg", "😀.jpg", "Ærø photo.jpg"])
def test_downloads_keep_non_latin_file_names(client: TestClient, astronaut: np.ndarray, name: str) -> None:
    kept = upload(client, jpeg_bytes(astronaut), name)
    assert kept["name"] == name
    response = client.get(f"/api/photos/{kept['id']}/download/{TEST_STYLE}")
    assert response.status_code == 200, response.text
    header = response.headers["content-disposition"]
    assert header.isascii()
    expected = f"{name.rsplit('.', 1)[0]}_{TEST_STYLE}.jpg"
    assert f"filename*=UTF-8''{quote(expected, safe='')}" in header
    assert Image.open(io.BytesIO(response.content)).size == (512, 512)


@pytest.mark.parametrize("raw, shown", [("..", "photo"), ("a/..", "photo"), ("holiday\x00.jpg", "holiday.jpg"),
                                        ("x" * 300 + ".jpg", "x" * 96 + ".jpg"), ("../../etc/passwd", "passwd"),
                                        ("C:\\photos\\me.jpg", "me.jpg"), ("", "photo")])
def test_odd_file_names_are_accepted_under_a_safe_name(client: TestClient, astronaut: np.ndarray, raw: str,
                                                       shown: str) -> None:
    assert upload_name(raw) == shown
    kept = upload(client, jpeg_bytes(astronaut), raw)
    assert kept["name"] == shown
    disposition = client.get(f"/api/photos/{kept['id']}/download/{TEST_STYLE}").headers["content-disposition"]
    assert "/" not in disposition.split(";")[1] and "\x00" not in disposition
    assert attachment("..jpg").startswith('attachment; filename="jpg') or 'filename="stylized' in attachment("..jpg")


def test_the_page_bounds_what_it_keeps(catalogue: Path, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small file that decodes to a huge photo is refused below the CLI's limit; old photos and styles are let go."""
    app = create_app("cpu", hosts=("testserver",))
    client = TestClient(app)
    assert app.state.studio.max_pixels < DEFAULT_MAX_PIXELS
    buffer = io.BytesIO()
    Image.new("L", (7200, 7200)).save(buffer, "PNG")  # 52 MP in a small file
    assert len(buffer.getvalue()) < 2**20
    refused = post_photo(client, buffer.getvalue(), "bomb.png")
    assert refused.status_code == 413 and "bomb.png" in refused.json()["error"]
    monkeypatch.setattr(web, "KEPT_UPLOAD_PIXELS", 600_000)  # room for two 512 x 512 photos
    first, second, third = (upload(client, jpeg_bytes(astronaut))["id"] for _ in range(3))
    assert client.get(f"/api/photos/{first}/original").status_code == 404
    assert all(client.get(f"/api/photos/{key}/original").status_code == 200 for key in (second, third))
    install_shipped_style(catalogue, "the_scream", "second_style", title="Second style", artist="pytest")
    monkeypatch.setattr(web, "KEPT_STYLES", 1)
    for style in (TEST_STYLE, "second_style", TEST_STYLE):
        assert client.get(f"/api/photos/{third}/thumbnail/{style}").status_code == 200
        assert list(app.state.studio.stylizers) == [style]


def test_the_server_loads_its_styles_while_the_page_waits_for_a_photo(catalogue: Path) -> None:
    """Started (the app's lifespan), the server warms up in the background: the first thumbnails need not wait."""
    app = create_app("cpu", hosts=("testserver",))
    with TestClient(app) as client:
        assert client.get("/api/styles").status_code == 200
        deadline = time.time() + 60
        while TEST_STYLE not in app.state.studio.stylizers:
            assert time.time() < deadline, "the styles were not loaded"
            time.sleep(0.1)


@contextmanager
def running(app: object, header_timeout: float = web.HEADER_TIMEOUT_S) -> Iterator[int]:
    """The app behind a real uvicorn server on a free port (what `stylize serve` runs), for the socket-level tests."""
    port = free_port()
    instance = server(app, "127.0.0.1", port, header_timeout)  # type: ignore[arg-type]
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not instance.started:
        assert time.time() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


def read_answer(sock: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:  # reset after the answer: what came before it counts
        pass
    return answer


def test_a_chunked_upload_is_read_no_further_than_the_limit(catalogue: Path) -> None:
    """A chunked body declares no length: the server must stop reading at the limit, not read 150 MB first."""
    with running(create_app("cpu", max_upload_mb=1, hosts=("127.0.0.1",))) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /api/photos?name=big.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % 2**20 + b"\xff" * 2**20 + b"\r\n"
        sent = 0
        try:
            while sent < 150 * 2**20:
                sock.sendall(chunk)
                sent += 2**20
        except OSError:  # the server answered and closed, or stopped reading (the send buffers are full)
            pass
        answer = read_answer(sock)
    assert sent < 40 * 2**20  # the limit plus what the kernel's socket buffers hold
    assert answer.startswith(b"HTTP/1.1 413") and b"uploads are limited to 1 MB" in answer


def test_half_sent_requests_are_cut_off(catalogue: Path) -> None:
    """Connections that send one byte of a request and wait are closed after the header timeout."""
    with running(create_app("cpu", hosts=("127.0.0.1",)), header_timeout=0.5) as port:
        stalled = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
        began = time.time()
        for sock in stalled:
            sock.sendall(b"G")
        assert all(sock.recv(1) == b"" for sock in stalled)  # closed by the server, not by our timeout
        assert time.time() - began < 5
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # and the server still answers
            sock.sendall(b"GET /api/styles HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert read_answer(sock).startswith(b"HTTP/1.1 200")
        for sock in stalled:
            sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                    reason="Debian's chromium and chromium-driver are not installed (apt-get install chromium "
                           "chromium-driver)")
def test_the_page_in_a_real_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a person uses it: upload a photo named in Cyrillic, then a second one while the first one's thumbnails
    are painting; drag the split on the picture; step through styles with the arrow keys; blend two styles of one
    network; move the strength slider; download; and the page at a phone's 390 px."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    root = tmp_path / "catalogue"
    install_catalogue_rows(root, dict(zip(("warm", "cool"), shipped_row_pair())))
    install_shipped_style(root, "starry_night", TEST_STYLE, title="Test style (a note that is not part of the name)",
                          artist="pytest")
    monkeypatch.setenv("STYLIZE_HOME", str(root))
    sample = Path(__file__).resolve().parents[1] / "samples" / "astronaut.jpg"
    first, second = tmp_path / "фото.jpg", tmp_path / "second.jpg"
    shutil.copy(sample, first)
    Image.open(sample).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second, quality=90)
    port = free_port()
    server_process = subprocess.Popen([sys.executable, "-m", "stylize.cli", "serve", "--port", str(port), "--device",
                                       "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    script = browser.execute_script
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
            assert time.time() < deadline and server_process.poll() is None, (
                server_process.stdout.read() if server_process.stdout else "")
            time.sleep(0.5)
        wait.until(lambda b: "3 styles ready" in b.find_element(By.ID, "status").text)
        chooser = browser.find_element(By.ID, "file")
        chooser.send_keys(str(first))
        # the first photo's strip has begun (not its status: that can last less than a poll)
        WebDriverWait(browser, 120, poll_frequency=0.05).until(
            lambda b: len(b.find_elements(By.CSS_SELECTOR, ".thumb")) == 3)
        first_original = browser.find_element(By.ID, "before").get_attribute("src")
        chooser.send_keys(str(second))  # most often while the first photo's thumbnails are painting
        wait.until(lambda b: b.find_element(By.ID, "before").get_attribute("src") != first_original
                   and "Pick a style" in b.find_element(By.ID, "status").text)
        time.sleep(1.0)  # anything the first photo still had on its way would land now
        thumbs = browser.find_elements(By.CSS_SELECTOR, ".thumb")
        assert len(thumbs) == 3  # one per style, not one per style per upload
        assert all(script("return arguments[0].naturalWidth", t.find_element(By.TAG_NAME, "img")) > 0 for t in thumbs)
        captions = [t.text for t in thumbs]
        assert "Test style" in captions and all("(" not in c for c in captions)  # short titles, whole
        assert all(t.find_element(By.TAG_NAME, "img").get_attribute("alt") for t in thumbs)
        assert "colour profile" not in browser.find_element(By.ID, "size-note").text  # this JPEG has none

        # the first style is shown large; the split is dragged on the picture itself
        wait.until(lambda b: "pending" not in b.find_element(By.ID, "compare").get_attribute("class"))
        compare = browser.find_element(By.ID, "compare")
        ActionChains(browser).move_to_element_with_offset(compare, 0, 0).click_and_hold() \
            .move_by_offset(-compare.size["width"] * 0.3, 0).release().perform()
        assert int(compare.get_attribute("aria-valuenow")) < 30
        clip = script("return arguments[0].style.clipPath", browser.find_element(By.ID, "after"))
        assert float(clip.rsplit(" ", 1)[1].rstrip("%)")) < 30  # the painted side now starts further left

        # arrow keys move between styles and show the one they land on
        selected = browser.find_element(By.CSS_SELECTOR, ".thumb.selected")
        before_title = browser.find_element(By.ID, "title").text
        selected.send_keys(Keys.ARROW_RIGHT)
        wait.until(lambda b: b.find_element(By.ID, "title").text != before_title)
        assert browser.switch_to.active_element.get_attribute("class") == "thumb selected"

        # a style of a shared network offers the others to blend with
        browser.find_element(By.CSS_SELECTOR, '.thumb[data-style="warm"]').click()
        wait.until(lambda b: b.find_element(By.ID, "blend-row").is_displayed())
        wait.until(lambda b: "pending" not in b.find_element(By.ID, "compare").get_attribute("class"))
        plain_view = script("return document.getElementById('after').src")
        script("const s = document.getElementById('blend'); s.value = 'cool'; s.dispatchEvent(new Event('change'));")
        wait.until(lambda b: script("return document.getElementById('after').src") != plain_view)
        first_view = script("return document.getElementById('after').src")
        script("const s = document.getElementById('strength'); s.value = 0.4;"
               "s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'));")
        wait.until(lambda b: script("return document.getElementById('after').src") != first_view)
        assert browser.find_element(By.ID, "strength-value").text == "0.40"

        browser.find_element(By.ID, "download").click()
        wait.until(lambda b: any(p.suffix == ".jpg" for p in downloads.iterdir()))
        saved = next(p for p in downloads.iterdir() if p.suffix == ".jpg")
        assert saved.name == "second_warm-0.50+cool-0.50.jpg"
        assert Image.open(saved).size == Image.open(sample).size  # the full-resolution result
        browser.save_screenshot(str(tmp_path / "page.png"))

        # the Cyrillic name survives the download (RFC 6266), as a person names the photo again
        chooser.send_keys(str(first))
        wait.until(lambda b: "Pick a style" in b.find_element(By.ID, "status").text)
        browser.find_element(By.CSS_SELECTOR, f'.thumb[data-style="{TEST_STYLE}"]').click()
        browser.find_element(By.ID, "download").click()
        wait.until(lambda b: (downloads / f"фото_{TEST_STYLE}.jpg").is_file())

        # a phone: nothing wider than the screen, the picture and the controls in one column
        browser.set_window_size(390, 844)
        time.sleep(0.5)
        width = script("return document.documentElement.clientWidth")
        assert script("return document.documentElement.scrollWidth") <= width
        assert browser.find_element(By.ID, "compare").size["width"] <= width
        browser.save_screenshot(str(tmp_path / "phone.png"))
        phone = Image.open(tmp_path / "phone.png")
        assert phone.size[0] <= 400 and np.asarray(phone.convert("L")).std() > 10  # a page, not a blank
    finally:
        browser.quit()
        server_process.terminate()
        server_process.wait(timeout=30)
