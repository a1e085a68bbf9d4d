"""``stylize serve``: a local web page over the same pipeline; photos never leave this machine.

The page (``web_page.html``: no external scripts, styles or fonts, so it works offline) uploads one
photo, shows it in every style as thumbnails, renders one large with the options of ``Options`` (the
one schema behind the CLI and the API) and downloads the full-resolution result with its EXIF and
colour profile, as the CLI writes it. An upload is decoded from a private temporary folder that is
removed at once; the last few photos are kept in memory. Requests naming another host or coming from
another origin are refused, so no other web page can post photos here or read results back.
"""

from __future__ import annotations

import io
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from .api import Stylizer, make_options
from .catalogue import file_label, list_styles
from .errors import ImageTooLargeError, StylizeError, UnknownStyleError
from .image_io import Photo, load_photo, to_pil
from .upsampling import resize_long_side
from .options import DEFAULT_MAX_PIXELS, Options
from .pipeline import save_result, shared_face_finder

PAGE = Path(__file__).with_name("web_page.html")
#: Long side of the strip's thumbnails and of the large view (the download is full size).
THUMBNAIL_SIDE, VIEW_SIDE = 256, 1280
KEPT_UPLOADS = 4


@dataclass
class Upload:
    """One photo at full size, and smaller copies (with their faces, found once) for the page."""

    name: str
    photo: Photo
    previews: dict[int, tuple[Photo, list]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, side: int) -> tuple[Photo, list]:
        """The photo at most ``side`` pixels long, and its faces: searched once, not once per style."""
        with self.lock:
            if side not in self.previews:
                small = Photo(resize_long_side(self.photo.rgb, side), exif=self.photo.exif,
                              icc_profile=self.photo.icc_profile)
                self.previews[side] = (small, shared_face_finder().find(small.rgb))
            return self.previews[side]


class Studio:
    """The server's state: the kept uploads and one lazily loaded ``Stylizer`` per style (thread-safe)."""

    def __init__(self, device: str, max_pixels: int, max_upload_bytes: int) -> None:
        self.device, self.max_pixels, self.max_upload_bytes = device, max_pixels, max_upload_bytes
        self.uploads: OrderedDict[str, Upload] = OrderedDict()
        self.stylizers: dict[str, Stylizer] = {}
        self.lock = threading.Lock()  # the uploads
        self.loading = threading.Lock()  # the stylizers: loading one takes seconds, uploads need not wait

    def stylizer(self, style: str) -> Stylizer:
        with self.loading:
            if style not in self.stylizers:
                self.stylizers[style] = Stylizer(style, self.device)
            return self.stylizers[style]

    def add(self, name: str, data: bytes) -> tuple[str, Upload]:
        if len(data) > self.max_upload_bytes:
            raise ImageTooLargeError(f"{name}: {len(data) / 2**20:.1f} MB is over this server's upload limit of "
                                     f"{self.max_upload_bytes / 2**20:.3g} MB")
        safe_name = Path(name).name or "photo"
        with tempfile.TemporaryDirectory(prefix="stylize-upload-") as folder:
            path = Path(folder) / safe_name
            path.write_bytes(data)
            try:
                photo = load_photo(path, self.max_pixels)
            except StylizeError as exc:  # the CLI's message, about the user's file name, not our folder
                raise type(exc)(str(exc).replace(str(path), safe_name)) from None
        photo.source = None
        key = uuid.uuid4().hex
        with self.lock:
            self.uploads[key] = upload = Upload(safe_name, photo)
            while len(self.uploads) > KEPT_UPLOADS:
                self.uploads.popitem(last=False)
        return key, upload

    def upload(self, key: str) -> Upload:
        with self.lock:
            if key not in self.uploads:
                raise LookupError("that photo is no longer here: upload it again")
            return self.uploads[key]


def render_options(strength: float = Options.strength, face_strength: float | None = Options.face_strength,
                   preserve_colors: bool = Options.preserve_colors, faces: bool = Options.faces,
                   hd: str = Options.hd.value) -> Options:
    """The options the page may set, as query parameters; every other one keeps ``Options``' default."""
    return make_options(strength=strength, face_strength=face_strength, preserve_colors=preserve_colors,
                        faces=faces, hd=hd, check=False)


#: The options of a request, as ``render_options`` reads them from its query.
RenderOptions = Annotated[Options, Depends(render_options)]


def result_file(photo: Photo, rgb: np.ndarray, style: Stylizer, options: Options) -> tuple[bytes, str]:
    """The result as the CLI would write it (EXIF, ICC, provenance; PNG when the photo has alpha, else JPEG),
    encoded in a private temporary folder, and its suffix."""
    suffix = ".png" if photo.alpha is not None else ".jpg"
    with tempfile.TemporaryDirectory(prefix="stylize-result-") as folder:
        path = save_result(photo, rgb, Path(folder) / f"result{suffix}", options.quality,
                           style.pipeline.provenance(options))
        return path.read_bytes(), suffix


def create_app(device: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS, max_upload_mb: float = 100,
               hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")) -> FastAPI:
    """The web app; ``hosts``: the names this server answers to (another Host header is refused; ``*``: any)."""
    studio = Studio(device, max_pixels, int(max_upload_mb * 2**20))
    app = FastAPI(title="stylize", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def same_origin_only(request: Request, call_next):  # noqa: ANN001, ANN202
        host = request.headers.get("host", "")
        if "*" not in hosts and host.rsplit(":", 1)[0] not in hosts:
            return JSONResponse({"error": f"this server answers to {', '.join(hosts)} only"}, status_code=403)
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{host}":
            return JSONResponse({"error": "requests from other web pages are refused"}, status_code=403)
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > studio.max_upload_bytes + 2**20:  # refused before it is read
            return JSONResponse({"error": f"uploads are limited to {studio.max_upload_bytes / 2**20:.3g} MB "
                                          "on this server"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(StylizeError)
    async def user_error(request: Request, exc: StylizeError) -> JSONResponse:
        status = 413 if isinstance(exc, ImageTooLargeError) else 404 if isinstance(exc, UnknownStyleError) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.exception_handler(LookupError)
    async def gone(request: Request, exc: LookupError) -> JSONResponse:
        return JSONResponse({"error": str(exc.args[0])}, status_code=404)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/api/styles")
    def styles() -> list[dict[str, str | float]]:
        return [{"name": s.name, "title": s.title, "artist": s.artist, "year": s.year,
                 "face_strength": s.face_strength} for s in list_styles()]

    @app.post("/api/photos")
    def upload(photo: UploadFile) -> dict[str, object]:
        key, kept = studio.add(photo.filename or "photo", photo.file.read(studio.max_upload_bytes + 1))
        return {"id": key, "name": kept.name, "width": kept.photo.size[0], "height": kept.photo.size[1]}

    def on_screen(key: str, style: str, side: int, options: Options) -> Response:
        """The photo at most ``side`` long in ``style``, as a quick JPEG for the page."""
        photo, found = studio.upload(key).at(side)
        return Response(encode(studio.stylizer(style).pipeline.run(photo, options, found).rgb), media_type="image/jpeg")

    @app.get("/api/photos/{key}/thumbnail/{style}")
    def thumbnail(key: str, style: str, options: RenderOptions) -> Response:
        return on_screen(key, style, THUMBNAIL_SIDE, replace(options, size=THUMBNAIL_SIDE))

    @app.get("/api/photos/{key}/view/{style}")
    def view(key: str, style: str, options: RenderOptions) -> Response:
        return on_screen(key, style, VIEW_SIDE, options)

    @app.get("/api/photos/{key}/original")
    def original(key: str) -> Response:
        return Response(encode(studio.upload(key).at(VIEW_SIDE)[0].rgb), media_type="image/jpeg")

    @app.get("/api/photos/{key}/download/{style}")
    def download(key: str, style: str, options: RenderOptions) -> Response:
        stylizer, kept = studio.stylizer(style), studio.upload(key)
        data, suffix = result_file(kept.photo, stylizer.pipeline.run(kept.photo, options).rgb, stylizer, options)
        name = f"{Path(kept.name).stem}_{file_label(style)}{suffix}".replace('"', "")
        return Response(data, media_type="image/png" if suffix == ".png" else "image/jpeg",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return app


def encode(rgb: np.ndarray) -> bytes:
    """A quick JPEG for the page (not the download: no metadata needed on screen)."""
    buffer = io.BytesIO()
    to_pil(rgb).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()
