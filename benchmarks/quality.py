"""Quality: one table per style, stylize beside the peer, by judges that pull against each other.

    .venv/bin/pip install -e ".[torch,bench]"
    .venv/bin/python -m benchmarks.quality --styles moulin_rouge almond_blossom --sheets out/face_sheets

Every figure is on the evaluation set (``evaluation.py``) at default settings. A single number can
be met the wrong way (a flat palette wash scores well on the style judge; pasting the photo's face
back keeps every face), so no column is enough alone:

- **tonal layout**: the Spearman rank correlation of the photo's and the output's luminance on a
  grid of ``LAYOUT_CELLS`` cells along the long side, averaged over photos (1: the photo's light
  and dark layout; 0: unrelated; below 0: inverted). Beside it the training term's distance
  (``losses.ToneLayout``, 8 px cells in the painting's tones: 0 best, 2 unrelated).
- **style distance**: the Magenta judge (``style_distance.py``): 0 the painting, 1 still the photo.
- **identity**: dlib's face-recognition ResNet (``face-recognition-models``; never trained on)
  encodes the photo's face and the output's at the same box; a face is kept below
  ``SAME_PERSON`` (dlib's documented same-person threshold). Faces of at least ``LARGE_FACE`` px
  and smaller ones are counted apart.
- **MediaPipe survival**: the face mesh found again at each face (``FaceFinder.check``).
- **photo share of faces**: how much of the photo's own face detail the default output keeps over
  the fully painted face (``photo_share``): 0 painted, 1 the photo pasted back.
- **face lightness**: the median luma of each face box, the output's minus the photo's (luma 0-255),
  averaged over all faces and over the darker half of the photos' faces. Tonal layout is a rank measure
  and cannot see a face painted lighter all over (dark skin made pale, dark hair made mid-grey); the
  peer's figure beside ours says how far the painting's palette moves a face by itself.
- **face colour**: the face box's median colour in CIELAB, the output's against the photo's: its chroma as a
  share of the photo's (below 1: greyer skin) and how far its hue turned, in degrees (warm skin painted teal
  turns by 100 or more). Lightness cannot see this, and the eye sees it first.
- **hatching**: the strongest spectral peak at the decoder's stamp frequencies (``hatch_peak``),
  the output's median over photos against the painting's own.

``--sheets DIR`` also writes, per style, every face of at least ``LARGE_FACE`` px at 100 %:
photo | stylize | peer, with each output's identity distance. The peer's outputs are cached in
``--peer-cache`` (keyed by the painting's bytes and each photo's pixels): it is deterministic and the
slowest method.
"""

from __future__ import annotations

import hashlib
import importlib.util
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from benchmarks.evaluation import evaluation_photos, parse_arguments, parse_styles, print_table, renderers
from stylize.options import DEFAULT_SIZE

#: cells of the tonal-layout grid along the photo's long side
LAYOUT_CELLS = 32
#: dlib's documented threshold: descriptors of one person lie closer than this
SAME_PERSON = 0.6
#: faces whose box is at least this tall (photo pixels) are counted apart (identity) and shown in the sheets
LARGE_FACE = 100
#: the decoder's stamp: two nearest-neighbour upsamplings repeat every 2 and 4 working-size pixels, in cycles
#: per pixel along (rows, columns)
HATCH_FREQUENCIES = ((0.25, 0.0), (0.0, 0.25), (0.25, 0.25), (0.25, -0.25), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5))
#: the targets of issue "Paint the whole portrait", per style at default settings
TARGETS = {"tonal layout": 0.75, "tonal layout below the peer's": 0.05, "style distance above the peer's": 0.05,
           "identity, large faces": 0.90, "MediaPipe survival": 0.80, "photo share": 0.08, "hatching / painting": 2.0}


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma in [0, 255], float32."""
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.float32)


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman's correlation needs."""
    order = values.argsort(kind="stable")
    ranked = np.empty(len(values), np.float64)
    ranked[order] = np.arange(len(values))
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranked)
    return sums[inverse] / counts[inverse]


def tonal_layout(photo: np.ndarray, output: np.ndarray, cells: int = LAYOUT_CELLS) -> float:
    """Spearman correlation of the two images' luminance, area-averaged to ``cells`` along the long side."""
    if photo.shape[:2] != output.shape[:2]:
        raise ValueError(f"photo {photo.shape[:2]} and output {output.shape[:2]} differ in size")
    h, w = photo.shape[:2]
    grid = (max(1, round(cells * w / max(h, w))), max(1, round(cells * h / max(h, w))))
    a, b = (ranks(cv2.resize(luminance(x), grid, interpolation=cv2.INTER_AREA).ravel()) for x in (photo, output))
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


class ToneJudge:
    """The training term (``losses.ToneLayout``) as a measure, the painting read once at the training's 512 px."""

    def __init__(self, painting: np.ndarray) -> None:
        from stylize.training.losses import ToneLayout

        scale = 512 / max(painting.shape[:2])
        small = cv2.resize(painting, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else painting
        self.term = ToneLayout([self.tensor(small)])

    @staticmethod
    def tensor(rgb: np.ndarray):  # noqa: ANN205
        import torch

        return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255

    def distance(self, photo: np.ndarray, output: np.ndarray) -> float:
        import torch

        styles = torch.zeros(1, dtype=torch.long)
        return float(self.term.distance(self.tensor(output), self.tensor(photo), styles)[0])


def face_detail(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Luminance minus its Gaussian blur (sigma 1/16 of the box height) inside ``box`` (x0, y0, x1, y1): the face's
    own detail, with colour and shading shifts cancelled out."""
    x0, y0, x1, y1 = box
    sigma = max(0.5, (y1 - y0) / 16)
    margin = int(np.ceil(3 * sigma))
    h, w = rgb.shape[:2]
    ax0, ay0, ax1, ay1 = max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin)
    lum = luminance(rgb[ay0:ay1, ax0:ax1])
    detail = lum - cv2.GaussianBlur(lum, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return detail[y0 - ay0:y1 - ay0, x0 - ax0:x1 - ax0]


def photo_share(photo: np.ndarray, default: np.ndarray, painted: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """mean |D - F| / mean |P - F| of face detail in ``box``: D the default output, F the output at face strength
    1.0 (the fully painted face), P the photo. 0: the face is the painted one; 1: the photo's, pasted back."""
    d, f, p = (face_detail(x, box) for x in (default, painted, photo))
    below = float(np.abs(p - f).mean())
    return float(np.abs(d - f).mean()) / below if below > 0 else 0.0


def face_lightness(photo: np.ndarray, output: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """(the photo's face level, the output's minus it): median lumas in ``box``; above 0 the face was painted
    lighter."""
    x0, y0, x1, y1 = box
    level = float(np.median(luminance(photo[y0:y1, x0:x1])))
    return level, float(np.median(luminance(output[y0:y1, x0:x1]))) - level


def face_colour(photo: np.ndarray, output: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """(the output's face chroma / the photo's, the hue turn in degrees, 0-180) from the median CIELAB a*, b* of
    ``box``."""
    x0, y0, x1, y1 = box

    def median_ab(rgb: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1], np.uint8), cv2.COLOR_RGB2LAB)
        return np.median(lab[..., 1:].reshape(-1, 2).astype(np.float64), axis=0) - 128.0

    before, after = median_ab(photo), median_ab(output)
    chroma = float(np.hypot(*after) / max(np.hypot(*before), 1.0))
    turn = abs(np.degrees(np.arctan2(after[1], after[0]) - np.arctan2(before[1], before[0])))
    return chroma, float(min(turn, 360.0 - turn))


def hatch_peak(rgb: np.ndarray, scale: float = 1.0) -> float:
    """The strongest of ``HATCH_FREQUENCIES`` (times ``scale``: working size over image size) in the luminance's
    power spectrum, as a multiple of the median power around it (a periodic stamp stands out by orders of
    magnitude; brushwork's own spectrum is smooth there)."""
    lum = luminance(rgb).astype(np.float64)
    n = min(lum.shape)
    if n < 32:
        raise ValueError(f"image of {lum.shape} is too small for a spectrum")
    h, w = lum.shape
    square = lum[(h - n) // 2:(h - n) // 2 + n, (w - n) // 2:(w - n) // 2 + n]
    window = np.outer(np.hanning(n), np.hanning(n))
    power = np.abs(np.fft.fft2((square - square.mean()) * window)) ** 2
    strongest = 0.0
    for fy, fx in HATCH_FREQUENCIES:
        cy, cx = round(fy * scale * n), round(fx * scale * n)
        near = np.roll(power, (-cy + 8, -cx + 8), axis=(0, 1))[:17, :17]  # 17x17 bins centred on the frequency
        peak = near[6:11, 6:11].max()
        ring = np.concatenate([near[:5].ravel(), near[12:].ravel(), near[5:12, :5].ravel(), near[5:12, 12:].ravel()])
        strongest = max(strongest, float(peak / max(np.median(ring), 1e-12)))
    return strongest


class IdentityJudge:
    """dlib's face-recognition ResNet (128-d descriptors) at a given face box; never trained on here."""

    def __init__(self) -> None:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or importlib.util.find_spec("dlib") is None:
            raise SystemExit("identity needs dlib: pip install -e '.[bench]' (dlib-bin, face-recognition-models)")
        import dlib

        models = Path(next(iter(spec.submodule_search_locations))) / "models"
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._encoder = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def descriptor(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        shape = self._shape(rgb, self._dlib.rectangle(*box))
        return np.asarray(self._encoder.compute_face_descriptor(rgb, shape))

    def distance(self, photo: np.ndarray, output: np.ndarray, box: tuple[int, int, int, int]) -> float:
        """``photo``: the photo, or its face's descriptor when already known (one photo, many outputs)."""
        reference = photo if photo.ndim == 1 else self.descriptor(photo, box)
        return float(np.linalg.norm(reference - self.descriptor(output, box)))


def face_box(face, shape: tuple[int, ...], margin: float = 0.0) -> tuple[int, int, int, int]:  # noqa: ANN001
    """A MediaPipe face's box in whole pixels, grown by ``margin`` of its size on every side, inside the image."""
    x0, y0, x1, y1 = face.box
    grow_x, grow_y = margin * (x1 - x0), margin * (y1 - y0)
    x0, y0, x1, y1 = x0 - grow_x, y0 - grow_y, x1 + grow_x, y1 + grow_y
    h, w = shape[:2]
    return max(0, int(x0)), max(0, int(y0)), min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))


def is_large(face, shape: tuple[int, ...]) -> bool:  # noqa: ANN001
    _, y0, _, y1 = face_box(face, shape)
    return y1 - y0 >= LARGE_FACE


@dataclass
class Scores:
    """One method on one style, over the evaluation set."""

    layout: list[float] = field(default_factory=list)
    tone_distance: list[float] = field(default_factory=list)
    style: list[float] = field(default_factory=list)
    identity_large: list[float] = field(default_factory=list)
    identity_small: list[float] = field(default_factory=list)
    survived: list[bool] = field(default_factory=list)
    share: list[float] = field(default_factory=list)
    lightness: list[tuple[float, float]] = field(default_factory=list)  # (photo's face level, output's shift)
    colour: list[tuple[float, float]] = field(default_factory=list)  # (chroma / the photo's, hue turn in degrees)
    hatch: list[float] = field(default_factory=list)

    @staticmethod
    def kept(distances: list[float]) -> str:
        if not distances:
            return "–"
        return f"{100 * sum(d < SAME_PERSON for d in distances) / len(distances):.0f} % of {len(distances)}"

    def lightness_cell(self) -> str:
        """The mean shift over all faces, and over the darker half (where a face painted pale shows)."""
        if not self.lightness:
            return "–"
        middle = statistics.median(level for level, _ in self.lightness)
        darker = [shift for level, shift in self.lightness if level <= middle]
        return f"{statistics.mean(shift for _, shift in self.lightness):+.0f} / {statistics.mean(darker):+.0f}"

    def colour_cell(self) -> str:
        """The median chroma share and hue turn over faces (a few faces painted another colour do not set it)."""
        if not self.colour:
            return "–"
        chroma, turn = statistics.median(c for c, _ in self.colour), statistics.median(t for _, t in self.colour)
        return f"{chroma:.2f} / {turn:.0f}°"

    def cells(self, painting_hatch: float) -> list[str]:
        return [f"{statistics.mean(self.layout):.2f}", f"{statistics.mean(self.tone_distance):.2f}",
                f"{statistics.mean(self.style):.3f}", self.kept(self.identity_large), self.kept(self.identity_small),
                f"{100 * statistics.mean(self.survived):.0f} %" if self.survived else "–",
                f"{statistics.mean(self.share):.2f}" if self.share else "–",
                self.lightness_cell(), self.colour_cell(),
                f"{statistics.median(self.hatch):.0f} / {painting_hatch:.0f}"]


COLUMNS = ["tonal layout", "ToneLayout distance", "style distance", f"identity, faces ≥ {LARGE_FACE} px",
           "identity, smaller", "MediaPipe survival", "photo share of faces", "face lightness: all / darker half",
           "face colour: chroma / hue turn (medians)",
           "hatching peak: output / painting"]


def misses(ours: Scores, peer: Scores | None, painting_hatch: float) -> list[str]:
    """The targets a style misses (empty: it meets them all)."""
    failed = []
    layout = statistics.mean(ours.layout)
    if layout < TARGETS["tonal layout"]:
        failed.append(f"tonal layout {layout:.2f} < {TARGETS['tonal layout']}")
    if peer is not None:
        if layout < statistics.mean(peer.layout) - TARGETS["tonal layout below the peer's"]:
            failed.append(f"tonal layout {layout:.2f} < the peer's {statistics.mean(peer.layout):.2f} - 0.05")
        if statistics.mean(ours.style) > statistics.mean(peer.style) + TARGETS["style distance above the peer's"]:
            failed.append(f"style distance {statistics.mean(ours.style):.3f} > the peer's "
                          f"{statistics.mean(peer.style):.3f} + 0.05")
    if ours.identity_large:
        kept = sum(d < SAME_PERSON for d in ours.identity_large) / len(ours.identity_large)
        if kept < TARGETS["identity, large faces"]:
            failed.append(f"identity {100 * kept:.0f} % < 90 %")
    if ours.survived and statistics.mean(ours.survived) < TARGETS["MediaPipe survival"]:
        failed.append(f"MediaPipe survival {100 * statistics.mean(ours.survived):.0f} % < 80 %")
    if ours.share and statistics.mean(ours.share) > TARGETS["photo share"]:
        failed.append(f"photo share {statistics.mean(ours.share):.2f} > 0.08")
    if statistics.median(ours.hatch) > TARGETS["hatching / painting"] * max(painting_hatch, 1.0):
        failed.append(f"hatching {statistics.median(ours.hatch):.0f} > 2 × the painting's {painting_hatch:.0f}")
    return failed


def face_sheet(rows: list[tuple[str, list[tuple[np.ndarray, str]]]]) -> Image.Image:
    """Rows of face crops at 100 %, each tile captioned."""
    label, pad = 16, 6
    tiles = [[(Image.fromarray(crop), caption) for crop, caption in row] for _, row in rows]
    width = max(sum(t.width + pad for t, _ in row) + pad for row in tiles)
    height = sum(max(t.height for t, _ in row) + label + pad for row in tiles) + pad
    sheet, y = Image.new("RGB", (width, height), "white"), pad
    draw = ImageDraw.Draw(sheet)
    for (name, _), row in zip(rows, tiles):
        x = pad
        for tile, caption in row:
            draw.text((x, y), f"{name}: {caption}", fill="black")
            sheet.paste(tile, (x, y + label))
            x += tile.width + pad
        y += max(t.height for t, _ in row) + label + pad
    return sheet


def pixel_digests(photos: dict[str, np.ndarray]) -> dict[str, str]:
    """name -> sha256 of the photo's pixels: what the peer cache and the photo set's digest are keyed by."""
    return {name: hashlib.sha256(rgb.tobytes()).hexdigest() for name, rgb in photos.items()}


def peer_outputs(style, photos: dict[str, np.ndarray], digests: dict[str, str], cache: Path,  # noqa: ANN001
                 device: str) -> dict[str, np.ndarray]:
    """The peer's painting of every photo, from ``cache`` when it holds one for this painting's and this photo's
    pixels (``digests``; a photo set that changed between runs is painted anew, never compared against stale
    paintings)."""
    folder = cache / hashlib.sha256(style.painting.read_bytes()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    outputs, render = {}, None
    for name, rgb in photos.items():
        path = folder / f"{name}-{digests[name][:12]}.png"
        if not path.is_file():
            render = render or dict(renderers(style, ["peer"], device))["peer"]
            Image.fromarray(render(rgb)).save(path)
        outputs[name] = np.asarray(Image.open(path).convert("RGB"))
    return outputs


def quality_arguments(parser) -> None:  # noqa: ANN001
    parser.add_argument("--sheets", type=Path, help="write each style's face-crop sheet here (STYLE_faces.jpg)")
    parser.add_argument("--sheet-photos", nargs="+", help="only these photos in the sheets (the README's: the ones "
                        "that may be redistributed, astronaut facerec_0008 facerec_0011)")
    parser.add_argument("--peer-cache", type=Path, default=Path("out/quality_peer"))
    parser.add_argument("--no-peer", action="store_true", help="stylize alone (no peer columns, no peer targets)")


def main() -> None:
    args = parse_arguments(__doc__, defaults={"methods": ["stylize", "peer"]}, more=quality_arguments)
    from benchmarks.style_distance import Judge

    from stylize.pipeline import shared_face_finder

    finder, judge, identity = shared_face_finder(), Judge(), IdentityJudge()
    photos = evaluation_photos(args.content_dir, args.limit)
    faces = {name: [f for f in finder.find(rgb) if f.landmarks is not None] for name, rgb in photos.items()}
    photo_vectors = {name: judge.vector(rgb) for name, rgb in photos.items()}
    photo_faces = {name: [identity.descriptor(rgb, face_box(face, rgb.shape)) for face in faces[name]]
                   for name, rgb in photos.items()}
    large = sum(is_large(face, photos[name].shape) for name in faces for face in faces[name])
    digests = pixel_digests(photos)
    photo_set = hashlib.sha256(b"".join(bytes.fromhex(digest) for digest in digests.values()))
    print(f"{len(photos)} photos (pixels' sha256 {photo_set.hexdigest()[:12]}: tables compare only within one set), "
          f"{sum(map(len, faces.values()))} faces ({large} of at least {LARGE_FACE} px)", flush=True)
    rows: dict[str, list[str]] = {}
    verdicts: dict[str, list[str]] = {}
    for style in parse_styles(args.styles, args.painting_dir):
        painting = np.asarray(Image.open(style.painting).convert("RGB"))
        painting_vector, painting_hatch, tones = judge.vector(painting), hatch_peak(painting), ToneJudge(painting)
        ours = dict(renderers(style, ["stylize"], args.device, args.face_strength, args.size,
                              args.face_crop))["stylize"]
        painted = ours if args.face_strength == 1.0 else \
            dict(renderers(style, ["stylize"], args.device, 1.0, args.size, args.face_crop))["stylize"]
        peer = None if args.no_peer else peer_outputs(style, photos, digests, args.peer_cache, args.device)
        scores = {"stylize": Scores(), "peer": Scores()}
        sheet_rows = []
        for name, rgb in photos.items():
            outputs = {"stylize": ours(rgb)} | ({"peer": peer[name]} if peer else {})
            fully_painted = outputs["stylize"] if painted is ours else painted(rgb)
            working = min(1.0, (args.size or DEFAULT_SIZE) / max(rgb.shape[:2]))  # the network's scale
            for method, output in outputs.items():
                s = scores[method]
                s.layout.append(tonal_layout(rgb, output))
                s.tone_distance.append(tones.distance(rgb, output))
                s.style.append(judge.distance(output, photo_vectors[name], painting_vector))
                s.hatch.append(hatch_peak(output, working if method == "stylize" else 1.0))
            for face, reference in zip(faces[name], photo_faces[name]):
                box, large = face_box(face, rgb.shape), is_large(face, rgb.shape)
                shown = face_box(face, rgb.shape, margin=0.25)
                tiles = [(rgb[shown[1]:shown[3], shown[0]:shown[2]], "photo")]
                for method, output in outputs.items():
                    s = scores[method]
                    d = identity.distance(reference, output, box)
                    (s.identity_large if large else s.identity_small).append(d)
                    s.survived.append(finder.check(output, face).survived)
                    s.lightness.append(face_lightness(rgb, output, box))
                    s.colour.append(face_colour(rgb, output, box))
                    tiles.append((output[shown[1]:shown[3], shown[0]:shown[2]], f"{method} {d:.2f}"))
                scores["stylize"].share.append(photo_share(rgb, outputs["stylize"], fully_painted, box))
                if large and (not args.sheet_photos or name in args.sheet_photos):
                    sheet_rows.append((name, tiles))
            print(f"  {style.label} {name}: layout {scores['stylize'].layout[-1]:+.2f}"
                  + (f" (peer {scores['peer'].layout[-1]:+.2f})" if peer else ""), flush=True)
        methods = ["stylize"] + (["peer"] if peer else [])
        for method in methods:
            rows[f"{style.label}, {method}"] = scores[method].cells(painting_hatch)
        verdicts[style.label] = misses(scores["stylize"], scores["peer"] if peer else None, painting_hatch)
        print(f"{style.label}: " + " | ".join(rows[f"{style.label}, stylize"])
              + (f"  (peer: {' | '.join(rows[f'{style.label}, peer'])})" if peer else ""), flush=True)
        if args.sheets and sheet_rows:
            args.sheets.mkdir(parents=True, exist_ok=True)
            face_sheet(sheet_rows).save(args.sheets / f"{style.label}_faces.jpg", quality=90)
    print_table(f"style, method ({len(photos)} photos)", COLUMNS, rows)
    print()
    for label, failed in verdicts.items():
        print(f"{label}: " + ("meets every target" if not failed else "misses " + "; ".join(failed)))


if __name__ == "__main__":
    main()
