"""The pipeline through the public API: controls, HD strategies, alpha, threads, and its errors."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import stylize
from conftest import ENGINES, HAS_TORCH, TEST_STYLE, needs_torch


@pytest.fixture(params=ENGINES)
def painter(catalogue: Path, request: pytest.FixtureRequest) -> stylize.Stylizer:
    return stylize.Stylizer(TEST_STYLE, device="cpu", engine=request.param)


def test_list_styles_reads_the_catalogue(catalogue: Path) -> None:
    styles = stylize.list_styles()
    assert [s.name for s in styles] == [TEST_STYLE]
    assert styles[0].title == "Test style"


def test_stylised_output_differs_and_keeps_size(painter: stylize.Stylizer, astronaut: np.ndarray) -> None:
    out = painter(astronaut)
    assert isinstance(out, Image.Image) and out.size == (512, 512) and out.mode == "RGB"
    assert np.abs(np.asarray(out, np.int16) - astronaut).mean() > 10


@pytest.mark.parametrize("hd", ["resize", "tiled", "original"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1), (3, 5)])
def test_thin_and_tiny_photos_are_stylised(painter: stylize.Stylizer, astronaut: np.ndarray,
                                           shape: tuple[int, int], hd: str) -> None:
    """Thinner than the network's reflection padding (found by fuzzing): padded, stylised, cropped back."""
    photo = cv2.resize(astronaut, shape[::-1], interpolation=cv2.INTER_AREA)
    out = painter(photo, hd=hd)
    assert out.size == shape[::-1]
    assert np.abs(np.asarray(out, np.int16) - photo).mean() > 5


def test_options_whole_give_what_keywords_give(painter: stylize.Stylizer, astronaut: np.ndarray) -> None:
    """``Stylizer.paint`` (the front ends' call, ``Options`` whole) and the keyword API paint the same pixels."""
    from stylize.api import make_options
    from stylize.image_io import to_photo

    options = make_options(strength=0.7, face_strength=0.9, size=256, check=False)
    whole = painter.paint(to_photo(astronaut), options).rgb
    assert np.array_equal(whole, np.asarray(painter(astronaut, strength=0.7, face_strength=0.9, size=256)))


def test_strength_zero_returns_the_input(painter: stylize.Stylizer, astronaut: np.ndarray) -> None:
    assert np.array_equal(np.asarray(painter(astronaut, strength=0.0)), astronaut)


def test_strength_mixes_linearly(painter: stylize.Stylizer, astronaut: np.ndarray) -> None:
    full = np.asarray(painter(astronaut, faces=False), np.float64)
    half = np.asarray(painter(astronaut, faces=False, strength=0.5), np.float64)
    assert np.abs(half - (full + astronaut) / 2).max() <= 1.5


def test_preserve_colors_keeps_the_photo_chroma(painter: stylize.Stylizer, astronaut: np.ndarray) -> None:
    out = np.asarray(painter(astronaut, preserve_colors=True, faces=False))
    chroma = lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(int)  # noqa: E731
    luma = lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 0].astype(int)  # noqa: E731
    plain = np.asarray(painter(astronaut, faces=False))
    assert np.abs(chroma(out) - chroma(astronaut)).mean() < 3
    assert np.abs(luma(out) - luma(plain)).mean() < 3


def test_faces_change_only_the_face_region(painter: stylize.Stylizer, astronaut: np.ndarray) -> None:
    with_faces = np.asarray(painter(astronaut), np.int16)
    without = np.asarray(painter(astronaut, faces=False), np.int16)
    diff = np.abs(with_faces - without).max(axis=2)
    assert diff[60:180, 170:280].mean() > 5  # her face was re-stylised
    assert diff[400:, :].max() == 0 and diff[:, :100].max() == 0  # far away, untouched


def test_a_smaller_face_crop_paints_the_same_face_more_coarsely(painter: stylize.Stylizer,
                                                                astronaut: np.ndarray) -> None:
    """``face_crop`` (the web page's thumbnails use 128): the same face, painted from fewer pixels."""
    fine, coarse, without = (np.asarray(painter.render(astronaut, check=False, **options)[0], np.float32)
                             for options in ({"face_crop": 512}, {"face_crop": 128}, {"faces": False}))
    face = (slice(60, 180), slice(170, 280))
    assert np.abs(coarse - without)[face].mean() > 5  # the small crop still paints the face
    assert np.abs(coarse - fine)[face].mean() < np.abs(without - fine)[face].mean()  # and it is the same face
    assert np.array_equal(coarse[400:], fine[400:])  # nothing else changes
    with pytest.raises(stylize.StylizeError, match="face_crop"):
        painter.render(astronaut, face_crop=16)


@pytest.mark.parametrize("hd", ["resize", "tiled", "original"])
def test_hd_strategies_give_full_size_output(painter: stylize.Stylizer, astronaut: np.ndarray, hd: str) -> None:
    big = cv2.resize(astronaut, (900, 700))
    out = painter(big, size=256, hd=hd, faces=False)
    assert out.size == (900, 700)
    assert np.abs(np.asarray(out, np.int16) - big).mean() > 10


def test_resize_strategy_puts_edges_where_the_photo_has_them(painter: stylize.Stylizer,
                                                              astronaut: np.ndarray) -> None:
    guided = np.asarray(painter(astronaut, size=128, faces=False, hd="resize"))
    small = np.asarray(painter(cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA), faces=False))
    plain = cv2.resize(small, (512, 512), interpolation=cv2.INTER_LINEAR)

    def edges(rgb: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)).ravel()

    photo_edges = edges(astronaut)
    assert np.corrcoef(edges(guided), photo_edges)[0, 1] > np.corrcoef(edges(plain), photo_edges)[0, 1] + 0.05


def test_alpha_comes_back(painter: stylize.Stylizer, astronaut: np.ndarray) -> None:
    alpha = np.zeros((512, 512), np.uint8)
    alpha[100:400, 100:400] = 255
    out = painter(np.dstack([astronaut, alpha]), faces=False)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], alpha)


def test_bad_options_and_styles_are_stylize_errors(painter: stylize.Stylizer, astronaut: np.ndarray,
                                                    catalogue: Path) -> None:
    with pytest.raises(stylize.StylizeError, match="strength"):
        painter(astronaut, strength=1.5)
    with pytest.raises(stylize.StylizeError):
        painter(astronaut, hd="sideways")
    with pytest.raises(stylize.UnknownStyleError, match=TEST_STYLE):  # the message lists the valid styles
        stylize.Stylizer("no_such_style")
    for hostile in ("../../etc/passwd", "/etc/passwd", "..", "a/b", ""):
        with pytest.raises(stylize.UnknownStyleError):
            stylize.Stylizer(hostile)
    with pytest.raises(stylize.DeviceError):
        stylize.Stylizer(TEST_STYLE, device="tpu")


def test_one_shot_equals_stylizer(painter: stylize.Stylizer, astronaut: np.ndarray, catalogue: Path) -> None:
    once = stylize.stylize(astronaut, TEST_STYLE, device="cpu", engine=painter.pipeline.engine.name, faces=False)
    assert np.array_equal(np.asarray(once), np.asarray(painter(astronaut, faces=False)))


def test_threads_share_one_stylizer(painter: stylize.Stylizer, astronaut: np.ndarray) -> None:
    inputs = [astronaut, astronaut[:, ::-1].copy(), astronaut[::-1].copy()]
    expected = [np.asarray(painter(x)) for x in inputs]
    results: dict[int, np.ndarray] = {}

    def work(index: int) -> None:
        results[index] = np.asarray(painter(inputs[index % 3]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for index, result in results.items():
        assert np.array_equal(result, expected[index % 3])
    assert len(results) == 6


@pytest.mark.skipif(not HAS_TORCH or not __import__("torch").cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_cpu(catalogue: Path, astronaut: np.ndarray) -> None:
    cpu = np.asarray(stylize.stylize(astronaut, TEST_STYLE, device="cpu", faces=False), np.float64)
    gpu = np.asarray(stylize.stylize(astronaut, TEST_STYLE, device="cuda", faces=False), np.float64)
    mse = np.mean((cpu - gpu) ** 2)
    assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 30  # fp16 on the GPU vs fp32 on the CPU


@needs_torch
def test_auto_device_follows_cuda_availability(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from stylize.engines.torch import default_dtype, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(stylize.DeviceError, match="CUDA is not available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    assert default_dtype(torch.device("cuda")) == torch.float16


def test_onnxruntime_by_name_runs_on_the_cpu_where_cuda_is(catalogue: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--engine onnxruntime on a machine with CUDA: device auto means the CPU (it once asked for --device cpu)."""
    from stylize import engines

    monkeypatch.setattr(engines, "cuda_available", lambda: True)
    assert stylize.Stylizer(TEST_STYLE, engine="onnxruntime").engine.startswith("onnxruntime on cpu")
    with pytest.raises(stylize.DeviceError, match="runs on the CPU"):
        stylize.Stylizer(TEST_STYLE, device="cuda", engine="onnxruntime")


@needs_torch
def test_cuda_index_beyond_the_machine_is_a_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from stylize.engines.torch import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1").index == 1
    with pytest.raises(stylize.DeviceError, match="2 CUDA device"):
        resolve_device("cuda:2")


#: How each engine's allocator fails (torch's CPU allocator; onnxruntime's arena)
ALLOCATION_FAILURES = {
    "torch": RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory"),
    "onnxruntime": Exception("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while "
                             "running Conv node. Failed to allocate memory for requested buffer of size 123"),
}


def test_out_of_memory_is_one_photos_error_and_a_batch_goes_on(painter: stylize.Stylizer, tmp_path: Path,
                                                               astronaut: np.ndarray,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from stylize.batch import run_batch
    from stylize.options import Options

    engine = painter.pipeline.engine
    real_paint = engine._paint

    def paint(rgb, stats):  # noqa: ANN001, ANN202 -- fails like the engine's allocator above 300x300 pixels
        if rgb.shape[0] * rgb.shape[1] > 300 * 300:
            raise ALLOCATION_FAILURES[engine.name]
        return real_paint(rgb, stats)

    monkeypatch.setattr(engine, "_paint", paint)
    with pytest.raises(stylize.OutOfMemoryError, match="hd resize") as caught:
        painter(astronaut, hd="original", faces=False)
    assert "--" not in str(caught.value)  # the API's option names: a CLI flag means nothing to API users
    for name, side in (("big.png", 512), ("small.png", 128)):
        Image.fromarray(astronaut[:side, :side]).save(tmp_path / name)
    jobs = [(tmp_path / n, tmp_path / "out" / n) for n in ("big.png", "small.png")]
    report = run_batch(painter, jobs, Options(hd="original", faces=False))
    assert [s.name for s, _ in report.failed] == ["big.png"] and "out of memory" in report.failed[0][1]
    assert report.written == [tmp_path / "out" / "small.png"]
    with pytest.raises(RuntimeError, match="other"):  # other errors are not disguised as memory
        monkeypatch.setattr(engine, "_paint", lambda rgb, stats: (_ for _ in ()).throw(RuntimeError("other")))
        painter(astronaut, faces=False)
