"""Loading every kind of photo as upright sRGB 8-bit, and saving atomically without losing anything."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from stylize.errors import ImageTooLargeError, OutputError, UnreadableImageError
from stylize.image_io import load_photo, save_image, to_photo


def gradient(w: int = 64, h: int = 40) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.uint8)[:, None, None]
    return np.concatenate(np.broadcast_arrays(x + 0 * y, y + 0 * x, np.full((h, w, 1), 90, np.uint8)), axis=2)


def test_exif_orientation_is_applied_and_reset(tmp_path: Path) -> None:
    rgb = gradient()
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    exif[0x010F] = "TestCam"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes(), quality=98)
    photo = load_photo(path)
    assert photo.rgb.shape == (64, 40, 3)  # upright: width and height swapped
    expected = np.rot90(rgb, k=-1)
    assert np.abs(photo.rgb.astype(int) - expected.astype(int)).mean() < 3
    out = save_image(Image.fromarray(photo.rgb), tmp_path / "out.jpg", exif=photo.exif)
    saved = Image.open(out).getexif()
    assert saved.get(0x0112) == 1 and saved.get(0x010F) == "TestCam"


def test_alpha_is_kept_aside(tmp_path: Path) -> None:
    rgba = np.dstack([gradient(), np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (40, 1))])
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    photo = load_photo(path)
    assert photo.rgb.shape == (40, 64, 3) and np.array_equal(photo.alpha, rgba[..., 3])


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16", "LA", "1"])
def test_modes_become_rgb8(tmp_path: Path, mode: str) -> None:
    base = Image.fromarray(gradient())
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257)
        path = tmp_path / "x.png"
    elif mode == "CMYK":
        image, path = base.convert("CMYK"), tmp_path / "x.jpg"
    else:
        image, path = base.convert(mode), tmp_path / "x.png"
    image.save(path)
    photo = load_photo(path)
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (40, 64, 3)
    if mode in ("L", "I;16"):
        assert abs(int(photo.rgb[20, 63, 0]) - int(np.asarray(base.convert("L"))[20, 63])) <= 2


def test_icc_tagged_image_is_converted_and_tagged_srgb(tmp_path: Path) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # any non-sRGB profile
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "tagged.png"
    Image.fromarray(gradient()).save(path, icc_profile=srgb)
    photo = load_photo(path)
    assert photo.icc_profile is not None
    out = save_image(Image.fromarray(photo.rgb), tmp_path / "o.png", icc_profile=photo.icc_profile)
    assert Image.open(out).info.get("icc_profile")
    assert profile  # a LAB profile can be made; unreadable profiles fall back to sRGB without error


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "corrupt|not an image"),
])
def test_bad_files_are_unreadable_errors(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(UnreadableImageError, match=reason):
        load_photo(path)


def test_truncated_jpeg(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(gradient(256, 256)).save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[:600])
    with pytest.raises(UnreadableImageError, match="cut.jpg"):
        load_photo(path)


def test_missing_and_directory_inputs(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImageError, match="no such file"):
        load_photo(tmp_path / "nope.jpg")
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(UnreadableImageError, match="directory"):
        load_photo(tmp_path / "dir.jpg")


def test_pixel_limit_refuses_bombs_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (3000, 3000)).save(path)  # 9 MP of zeros: tiny file, big image
    with pytest.raises(ImageTooLargeError, match="9.0 MP"):
        load_photo(path, max_pixels=4_000_000)
    assert load_photo(path, max_pixels=10_000_000).size == (3000, 3000)


def test_arrays_and_pil_images_are_accepted() -> None:
    assert to_photo(np.zeros((5, 7), np.uint8)).rgb.shape == (5, 7, 3)
    assert to_photo(np.ones((5, 7, 4), np.float32)).alpha is not None
    assert to_photo(Image.new("RGB", (9, 4))).size == (9, 4)
    with pytest.raises(UnreadableImageError):
        to_photo(np.zeros((5, 7, 2)))
    with pytest.raises(UnreadableImageError):
        to_photo(12345)  # type: ignore[arg-type]


def test_float_arrays_outside_0_1_are_refused_not_turned_white() -> None:
    photo = to_photo(np.full((4, 4, 3), 0.5, np.float32))
    assert photo.rgb.max() == 128  # 0.5 -> mid grey
    with pytest.raises(UnreadableImageError, match=r"\[0, 1\].*divide by 255"):
        to_photo(np.full((4, 4, 3), 200.0))  # a float photo in 0-255
    with pytest.raises(UnreadableImageError, match="NaN"):
        to_photo(np.array([[[0.1, np.nan, 0.2]]]))


def test_save_is_atomic_and_never_overwrites_input(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(gradient()).save(source)
    before = source.read_bytes()
    with pytest.raises(OutputError, match="overwrite the input"):
        save_image(Image.fromarray(gradient()), source, input_path=source)
    assert source.read_bytes() == before
    out = save_image(Image.fromarray(gradient()), tmp_path / "sub" / "out.webp", quality=80)
    assert Image.open(out).size == (64, 40)
    assert [p.name for p in out.parent.iterdir()] == ["out.webp"]  # no temporary left behind
    with pytest.raises(OutputError, match="extension"):
        save_image(Image.fromarray(gradient()), tmp_path / "out.xyz")


def test_output_under_a_file_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        save_image(Image.fromarray(gradient()), blocker / "o.png")


def test_format_size_limits_are_clear_errors(tmp_path: Path) -> None:
    wide = Image.new("RGB", (16_384, 2))
    with pytest.raises(OutputError, match="at most 16383"):
        save_image(wide, tmp_path / "wide.webp")
    assert list(tmp_path.iterdir()) == []
    assert Image.open(save_image(wide, tmp_path / "wide.png")).size == (16_384, 2)


def test_loading_in_threads_never_touches_pillows_bomb_guard(tmp_path: Path) -> None:
    """load_photo must not switch off Pillow's process-wide guard, even for a moment: other threads rely on it."""
    import threading

    from PIL import Image as PILImage

    path = tmp_path / "small.png"
    Image.fromarray(gradient()).save(path)
    guard = PILImage.MAX_IMAGE_PIXELS
    seen: set[object] = set()
    stop = threading.Event()

    def load_many() -> None:
        while not stop.is_set():
            load_photo(path)

    workers = [threading.Thread(target=load_many) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(200_000):
            seen.add(PILImage.MAX_IMAGE_PIXELS)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert seen == {guard}


def test_images_beyond_pillows_own_limit_are_too_large_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image as PILImage

    path = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(path)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 20_000)  # so 90,000 pixels are a 'bomb' to Pillow
    with pytest.raises(ImageTooLargeError, match="Pillow's own decompression-bomb limit"):
        load_photo(path, max_pixels=10**9)


def test_metadata_is_carried_by_allow_list(tmp_path: Path) -> None:
    """Camera, date and GPS travel; a TIFF's 70 KB private tag, software and maker notes do not."""
    tiff_exif = Image.Exif()
    tiff_exif[0x010F] = "TestCam"
    tiff_exif[65000] = "x" * 70_000  # a private tag: more than a JPEG's EXIF can hold
    Image.fromarray(gradient()).save(tmp_path / "scan.tif", exif=tiff_exif)
    photo = load_photo(tmp_path / "scan.tif")
    out = save_image(Image.fromarray(photo.rgb), tmp_path / "scan.jpg", exif=photo.exif)
    carried = Image.open(out).getexif()
    assert carried[0x010F] == "TestCam" and 65000 not in carried

    camera = Image.Exif()
    camera[0x010F], camera[0x0131] = "TestCam", "Editor 1.0"
    camera.get_ifd(0x8769).update({0x9003: "2020:01:02 03:04:05", 0x927C: b"maker" * 100})
    camera.get_ifd(0x8825).update({1: "N", 2: (1.0, 2.0, 3.0)})
    Image.fromarray(gradient()).save(tmp_path / "cam.jpg", exif=camera)
    kept = Image.Exif()
    kept.load(load_photo(tmp_path / "cam.jpg").exif)
    assert kept[0x010F] == "TestCam" and 0x0131 not in kept
    assert kept.get_ifd(0x8769) == {0x9003: "2020:01:02 03:04:05"}
    assert kept.get_ifd(0x8825)[2] == (1.0, 2.0, 3.0)


def test_metadata_that_cannot_be_written_never_costs_the_photo(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    too_long = Image.Exif()
    too_long[0x010E] = "d" * 70_000  # an image description no JPEG can hold
    out = save_image(Image.fromarray(gradient()), tmp_path / "out.jpg", exif=too_long.tobytes())
    assert np.asarray(Image.open(out)).shape == (40, 64, 3)
    assert len(caplog.records) == 1 and "without its metadata" in caplog.records[0].getMessage()


def icc_profile(space: bytes, tags: dict[bytes, bytes]) -> bytes:
    """A minimal ICC v2 display profile (matrix/TRC): enough for LittleCMS, made here so no file is needed."""
    import struct

    entries, data, offset = [], b"", 128 + 4 + 12 * len(tags)
    for signature, body in tags.items():
        data += b"\0" * (-(offset + len(data)) % 4)
        entries.append(signature + struct.pack(">II", offset + len(data), len(body)))
        data += body
    table = struct.pack(">I", len(tags)) + b"".join(entries)
    header = (struct.pack(">I", 128 + len(table) + len(data)) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntr"
              + space + b"XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 28 + xyz(0.9642, 1.0, 0.8249)[8:] + b"\0" * 48)
    return header + table + data


def xyz(x: float, y: float, z: float) -> bytes:
    import struct

    return b"XYZ \0\0\0\0" + struct.pack(">iii", *(round(v * 65536) for v in (x, y, z)))


def gamma_curve(gamma: float) -> bytes:
    import struct

    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def test_palette_and_16_bit_images_are_converted_to_srgb_before_tagging(tmp_path: Path) -> None:
    white = xyz(0.9642, 1.0, 0.8249)
    # an RGB space whose red and blue primaries are sRGB's blue and red: its 'red' pixel is blue in sRGB
    swapped = icc_profile(b"RGB ", {b"wtpt": white, b"rXYZ": xyz(0.1431, 0.0606, 0.7141),
                                    b"gXYZ": xyz(0.3851, 0.7169, 0.0971), b"bXYZ": xyz(0.4361, 0.2225, 0.0139),
                                    b"rTRC": gamma_curve(2.2), b"gTRC": gamma_curve(2.2), b"bTRC": gamma_curve(2.2)})
    Image.new("RGB", (8, 8), (255, 0, 0)).quantize(4).save(tmp_path / "palette.png", icc_profile=swapped)
    assert Image.open(tmp_path / "palette.png").mode == "P"
    red, green, blue = load_photo(tmp_path / "palette.png").rgb[0, 0].astype(int)
    assert blue > 200 and red < 60
    # a linear-light grey space: 16-bit mid grey is much lighter in sRGB
    linear_grey = icc_profile(b"GRAY", {b"wtpt": white, b"kTRC": gamma_curve(1.0)})
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(tmp_path / "grey16.png", icc_profile=linear_grey)
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    assert 175 < load_photo(tmp_path / "grey16.png").rgb[0, 0, 0] < 200  # not 128


def test_heic_is_read_upright_with_its_exif(tmp_path: Path) -> None:
    """HEIC, as phones save photos (pillow-heif): pixels, orientation and camera tags as for a JPEG."""
    rgb = gradient()
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneCam"
    image.save(tmp_path / "photo.heic", quality=95, exif=exif.tobytes())
    photo = load_photo(tmp_path / "photo.heic")
    assert photo.rgb.shape == (64, 40, 3)  # upright
    assert np.abs(photo.rgb.astype(int) - np.rot90(rgb, k=-1).astype(int)).mean() < 6
    kept = Image.Exif()
    kept.load(photo.exif)
    assert kept.get(0x010F) == "PhoneCam" and kept.get(0x0112) == 1


def test_reading_a_photo_leaves_the_warning_filters_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Warning filters are process-wide: a thread reading a photo must not change them under another (the CLI
    quietens Pillow's once, at start). A corrupt EXIF block makes Pillow warn; it still loads."""
    import warnings

    image = Image.fromarray(gradient())
    path = tmp_path / "odd_exif.jpg"
    image.save(path, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x0f\x00\x02", quality=95)
    touched: list[str] = []
    monkeypatch.setattr(warnings, "catch_warnings", lambda *a, **k: touched.append("catch_warnings"))
    monkeypatch.setattr(warnings, "simplefilter", lambda *a, **k: touched.append("simplefilter"))
    monkeypatch.setattr(warnings, "filterwarnings", lambda *a, **k: touched.append("filterwarnings"))
    photo = load_photo(path)
    assert photo.rgb.shape == (40, 64, 3) and touched == []
