"""``stylize serve``: a local web page over the same pipeline; photos never leave this machine.

The page (``web_page.html``: no external scripts, styles or fonts, so it works offline) uploads one
photo, shows it in every style as thumbnails, renders one large with the options of ``Options`` (the
one schema behind the CLI and the API) and downloads the full-resolution result with its EXIF and
colour profile, as the CLI writes it. An upload is decoded from a private temporary folder that is
removed at once; the last few photos are kept in memory. Requests naming another host or coming from
another origin are refused, so no other web page can post photos here or read results back (nor can one
reach it through a DNS name of its own that points here). Uploads are read up to the size limit and no
further, and a client that is slow to send its request is cut off, so one cannot hold the server.
"""

from __future__ import annotations

import asyncio
import io
import re
import socket
import tempfile
import threading
import unicodedata
import uuid
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, AsyncIterator, Iterable
from urllib.parse import quote

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from .api import Stylizer, make_options
from .catalogue import file_label, list_styles
from .errors import ImageTooLargeError, StylizeError, UnknownStyleError
from .image_io import Photo, load_photo, to_pil
from .upsampling import resize_long_side
from .options import PAGE_MAX_PIXELS, Options
from .pipeline import save_result, shared_face_finder

if TYPE_CHECKING:
    import uvicorn

PAGE = Path(__file__).with_name("web_page.html")
#: Long side of the strip's thumbnails and of the large view (the download is full size).
THUMBNAIL_SIDE, VIEW_SIDE = 256, 1280
#: A thumbnail's faces are a few pixels: painted from a small crop they look the same, 16 times sooner.
THUMBNAIL_FACE_CROP = 128
#: Photos kept for the page: at most this many, and at most this many pixels together (the newest is always kept).
KEPT_UPLOADS, KEPT_UPLOAD_PIXELS = 4, 100_000_000
#: Styles kept loaded, least recently used out first (more than are shipped: the strip paints them all in turn,
#: and an LRU smaller than a cycle reloads every one). Their networks' working memory lives in the engines'
#: sessions, one per graph file (``engines.onnx``), not here.
KEPT_STYLES = 32
#: Seconds a client has to send a request's headers, and an upload's body; connections served at once.
HEADER_TIMEOUT_S, BODY_TIMEOUT_S, MAX_CONNECTIONS = 10.0, 120.0, 64
#: Sent with an answer given before the request's body was read: the connection closes instead of reading the rest.
CLOSE = {"Connection": "close"}
#: Host names that reach only this machine.
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: The page's icon: a palette, drawn inline (nothing is fetched from elsewhere).
ICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="14" '
        b'fill="#e8d8b0"/><circle cx="10" cy="12" r="3" fill="#2456c8"/><circle cx="17" cy="8" r="3" '
        b'fill="#c8242e"/><circle cx="23" cy="14" r="3" fill="#f0b400"/><circle cx="20" cy="22" r="4" '
        b'fill="#fbfbfd"/></svg>')


@dataclass
class Upload:
    """One photo at full size, and smaller copies (with their faces, found once) for the page."""

    name: str
    photo: Photo
    previews: dict[int, Photo] = field(default_factory=dict)
    faces: dict[int, list] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def photo_at(self, side: int) -> Photo:
        """The photo at most ``side`` pixels long (made once)."""
        with self.lock:
            if side not in self.previews:
                self.previews[side] = Photo(resize_long_side(self.photo.rgb, side), exif=self.photo.exif,
                                            icc_profile=self.photo.icc_profile)
            return self.previews[side]

    def at(self, side: int) -> tuple[Photo, list]:
        """The photo at most ``side`` pixels long, and its faces: searched once, not once per style (and not
        for the plain photo the page shows beside the result)."""
        small = self.photo_at(side)
        with self.lock:
            if side not in self.faces:
                self.faces[side] = shared_face_finder().find(small.rgb)
            return small, self.faces[side]


def upload_name(raw: str) -> str:
    """The name an upload is shown and downloaded under: its last path part, printable characters only, at most
    100 of them (the suffix kept); "photo" when nothing is left. The file itself is never stored under it."""
    name = "".join(ch for ch in re.split(r"[/\\]", raw)[-1] if ch.isprintable()).strip()
    if name.strip(".") == "":
        return "photo"
    stem, suffix = (name.rsplit(".", 1)[0], "." + name.rsplit(".", 1)[1]) if "." in name[1:] else (name, "")
    suffix = suffix if len(suffix) <= 10 else ""
    return stem[:100 - len(suffix)] + suffix


def upload_suffix(name: str) -> str:
    """The name's suffix when it is a plain one (".jpg", ".heic"): the decoder may go by it."""
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


class Studio:
    """The server's state: the kept uploads and the recently used styles, loaded once each (thread-safe)."""

    def __init__(self, device: str, max_pixels: int, max_upload_bytes: int) -> None:
        self.device, self.max_pixels, self.max_upload_bytes = device, max_pixels, max_upload_bytes
        self.uploads: OrderedDict[str, Upload] = OrderedDict()
        self.stylizers: OrderedDict[str, Stylizer] = OrderedDict()
        self.lock = threading.Lock()  # the uploads
        self.loading = threading.Lock()  # the stylizers: loading one takes seconds, uploads need not wait

    def stylizer(self, style: str) -> Stylizer:
        with self.loading:
            if style in self.stylizers:
                self.stylizers.move_to_end(style)
            else:
                self.stylizers[style] = Stylizer(style, self.device)
                while len(self.stylizers) > KEPT_STYLES:  # one still painting keeps its own reference
                    self.stylizers.popitem(last=False)
            return self.stylizers[style]

    def warm_up(self) -> None:
        """Start MediaPipe and load every style while the person picks a photo (seconds, once), so the first
        thumbnails do not wait for them."""
        shared_face_finder()
        for style in list_styles():
            try:
                self.stylizer(style.name)
            except StylizeError:  # a broken style says so when it is picked
                pass

    def add(self, name: str, data: bytes) -> tuple[str, Upload]:
        """Decode an upload (``name`` from ``upload_name``) in a private folder, and keep it."""
        with tempfile.TemporaryDirectory(prefix="stylize-upload-") as folder:
            path = Path(folder) / f"upload{upload_suffix(name)}"
            path.write_bytes(data)
            try:
                photo = load_photo(path, self.max_pixels)
            except StylizeError as exc:  # the CLI's message, about the user's file name, not our folder
                raise type(exc)(str(exc).replace(str(path), name)) from None
        photo.source = None
        key = uuid.uuid4().hex
        with self.lock:
            self.uploads[key] = upload = Upload(name, photo)
            while len(self.uploads) > KEPT_UPLOADS or (len(self.uploads) > 1
                                                       and self.kept_pixels() > KEPT_UPLOAD_PIXELS):
                self.uploads.popitem(last=False)
        return key, upload

    def kept_pixels(self) -> int:
        return sum(upload.photo.size[0] * upload.photo.size[1] for upload in self.uploads.values())

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
                           style.provenance(options))
        return path.read_bytes(), suffix


def create_app(device: str = "auto", max_pixels: int = PAGE_MAX_PIXELS, max_upload_mb: float = 100,
               hosts: Iterable[str] = LOCAL_NAMES) -> FastAPI:
    """The web app; ``hosts``: the names this server answers to (a request naming another host is refused)."""
    studio = Studio(device, max_pixels, int(max_upload_mb * 2**20))
    allowed = frozenset(name.lower() for name in hosts)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=studio.warm_up, name="warm-up", daemon=True).start()
        yield

    app = FastAPI(title="stylize", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.middleware("http")
    async def same_origin_only(request: Request, call_next):  # noqa: ANN001, ANN202
        host = request.headers.get("host", "")
        if host_name(host) not in allowed:
            return JSONResponse({"error": f"this server answers to {', '.join(sorted(allowed))} only "
                                          "(stylize serve --allow-host NAME adds a name)"}, status_code=403)
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{host}":
            return JSONResponse({"error": "requests from other web pages are refused"}, status_code=403)
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > studio.max_upload_bytes + 2**20:  # refused before it is read
            return JSONResponse({"error": upload_limit_message(studio.max_upload_bytes)}, status_code=413,
                                headers=CLOSE)
        return await call_next(request)

    @app.exception_handler(StylizeError)
    async def user_error(request: Request, exc: StylizeError) -> JSONResponse:
        status = 413 if isinstance(exc, ImageTooLargeError) else 404 if isinstance(exc, UnknownStyleError) else 400
        return JSONResponse({"error": str(exc)}, status_code=status, headers=CLOSE if status == 413 else None)

    @app.exception_handler(LookupError)
    async def gone(request: Request, exc: LookupError) -> JSONResponse:
        return JSONResponse({"error": str(exc.args[0])}, status_code=404)

    @app.exception_handler(TimeoutError)
    async def too_slow(request: Request, exc: TimeoutError) -> JSONResponse:
        return JSONResponse({"error": f"the upload took over {BODY_TIMEOUT_S:.0f} s: try again"}, status_code=408,
                            headers=CLOSE)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/favicon.ico")
    def icon() -> Response:
        return Response(ICON, media_type="image/svg+xml")

    @app.get("/api/styles")
    def styles() -> list[dict[str, str | float | None]]:
        """Each style, and the network it is a row of (styles of one network blend; null: a network of its own)."""
        return [{"name": s.name, "title": s.title, "short_title": s.short_title, "artist": s.artist,
                 "year": s.short_year, "face_strength": s.face_strength, "network": s.trunk.stem if s.trunk else None}
                for s in list_styles()]

    @app.post("/api/photos")
    async def upload(request: Request, name: str = "photo") -> dict[str, object]:
        """The photo is the request's body, its file name a query parameter (so no form parser reads an
        upload of any size to disk before the limit is checked)."""
        data = await read_body(request, studio.max_upload_bytes)
        key, kept = await run_in_threadpool(studio.add, upload_name(name), data)
        return {"id": key, "name": kept.name, "width": kept.photo.size[0], "height": kept.photo.size[1],
                "exif": kept.photo.exif is not None, "colour_profile": kept.photo.icc_profile is not None}

    def on_screen(key: str, style: str, side: int, options: Options) -> Response:
        """The photo at most ``side`` long in ``style``, as a quick JPEG for the page."""
        photo, found = studio.upload(key).at(side)
        return Response(encode(studio.stylizer(style).paint(photo, options, found).rgb), media_type="image/jpeg")

    @app.get("/api/photos/{key}/thumbnail/{style}")
    def thumbnail(key: str, style: str, options: RenderOptions) -> Response:
        small = replace(options, size=THUMBNAIL_SIDE, face_crop=THUMBNAIL_FACE_CROP)
        return on_screen(key, style, THUMBNAIL_SIDE, small)

    @app.get("/api/photos/{key}/view/{style}")
    def view(key: str, style: str, options: RenderOptions) -> Response:
        return on_screen(key, style, VIEW_SIDE, options)

    @app.get("/api/photos/{key}/original")
    def original(key: str) -> Response:
        return Response(encode(studio.upload(key).photo_at(VIEW_SIDE).rgb), media_type="image/jpeg")

    @app.get("/api/photos/{key}/download/{style}")
    def download(key: str, style: str, options: RenderOptions) -> Response:
        stylizer, kept = studio.stylizer(style), studio.upload(key)
        data, suffix = result_file(kept.photo, stylizer.paint(kept.photo, options).rgb, stylizer, options)
        return Response(data, media_type="image/png" if suffix == ".png" else "image/jpeg",
                        headers={"Content-Disposition": attachment(f"{Path(kept.name).stem}_{file_label(style)}"
                                                                   f"{suffix}")})

    app.state.studio = studio
    return app


def upload_limit_message(limit: int) -> str:
    return f"uploads are limited to {limit / 2**20:.3g} MB on this server"


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, read no further than ``limit`` bytes (a chunked upload declares no length) and
    within ``BODY_TIMEOUT_S``."""
    chunks: list[bytes] = []

    async def read() -> None:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ImageTooLargeError(upload_limit_message(limit))
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), BODY_TIMEOUT_S)
    except asyncio.TimeoutError:  # not the built-in TimeoutError before Python 3.11
        raise TimeoutError from None
    return b"".join(chunks)


def attachment(name: str) -> str:
    """A Content-Disposition header for any file name (RFC 6266): an ASCII fallback, and the name in UTF-8."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r'[^A-Za-z0-9._ -]', "", ascii_name).strip(" ._") or "stylized"
    if "." not in ascii_name:
        ascii_name += Path(name).suffix
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def host_name(header: str) -> str:
    """The host of a Host header, without its port: "[::1]:8765" -> "[::1]"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.rsplit(":", 1)[0]


def bracketed(host: str) -> str:
    """An address as it stands in a URL or a Host header (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def own_host_names(bind: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The names a server bound to ``bind`` answers to: this machine's own (its loopback names; bound to another
    address, that address, and bound to every address, its host names and addresses), and ``extra``. Any other
    Host header is refused, so a web page cannot reach the server through a DNS name that it points here."""
    names = set(LOCAL_NAMES) | {bracketed(bind)} | {bracketed(name) for name in extra}
    if bind in ("0.0.0.0", "::"):
        hostname = socket.gethostname()
        names |= {hostname, socket.getfqdn()}
        names |= {bracketed(address) for address in own_addresses(hostname)}
    names.discard("0.0.0.0")
    names.discard("[::]")
    return tuple(sorted(name.lower() for name in names))


def own_addresses(hostname: str) -> set[str]:
    """This machine's addresses: those its host name resolves to, and the one it reaches other machines from
    (a UDP socket's "connect" picks the route and sends nothing)."""
    addresses = set()
    try:
        addresses |= {str(info[4][0]) for info in socket.getaddrinfo(hostname, None)}
    except OSError:  # a host name that does not resolve: the other names still work
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 9))
                addresses.add(str(sock.getsockname()[0]))
        except OSError:  # no route of that family
            pass
    return addresses


def page_url(bind: str, port: int) -> str:
    """The page's address on this machine for a server bound to ``bind``."""
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(bind, bracketed(bind))
    return f"http://{host}:{port}/"


def server(app: FastAPI, host: str, port: int, header_timeout: float = HEADER_TIMEOUT_S) -> "uvicorn.Server":
    """A uvicorn server for the app that closes connections whose request headers are late, and serves at most
    ``MAX_CONNECTIONS`` at once (503 beyond)."""
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        """HTTP/1.1 that closes a connection when a request's headers take longer than ``header_timeout``."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
            super().connection_made(transport)  # type: ignore[arg-type]
            self.close_unless_request_by(header_timeout)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.close_unless_request_by(header_timeout)

        def close_unless_request_by(self, seconds: float) -> None:
            waiting = self.cycle

            def late() -> None:
                if self.cycle is waiting and not self.transport.is_closing():
                    self.transport.close()

            self.loop.call_later(seconds, late)

    config = uvicorn.Config(app, host=host, port=port, http=TimedH11Protocol, log_level="warning",
                            limit_concurrency=MAX_CONNECTIONS)
    return uvicorn.Server(config)


def encode(rgb: np.ndarray) -> bytes:
    """A quick JPEG for the page (not the download: no metadata needed on screen)."""
    buffer = io.BytesIO()
    to_pil(rgb).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()
