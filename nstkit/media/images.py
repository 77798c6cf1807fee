"""Image I/O and the caffe-BGR pixel space the seed optimised in.

Loading accepts what users actually have on disk (phone JPEGs with EXIF
rotation, RGBA PNGs, 16-bit TIFFs, palette GIF-likes) and turns every
failure into one `NstkitError` line. Saving is atomic (temp file + rename)
so an interrupted run never leaves half an image, and refuses to write over
an input.

Pixel space: `keras.applications.resnet50.preprocess_input` ("caffe" mode)
flips RGB to BGR and subtracts the ImageNet mean, without scaling. The
seed's Adam learning rate of 20 is in these units, so nstkit optimises the
image in exactly this space and `deprocess` is its exact inverse.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from PIL import Image, ImageOps

from ..core.catalog import MAX_STYLE_SIDE, MIN_IMAGE_SIDE
from ..core.errors import NstkitError
from ..core.files import atomic_write

# ImageNet mean in BGR order, as in keras.applications.imagenet_utils (caffe mode).
IMAGENET_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}  # Pillow's codes for JPEG chroma subsampling

ImageInput = Union[str, os.PathLike, np.ndarray, Image.Image]
# The sample content and style images, installed with the package (licences in samples/README.md), so that
# examples, notebooks and the panel run from a wheel as well as from a clone.
BUNDLED_IMAGES = Path(__file__).resolve().parent / "samples"


def load_image(source: ImageInput, max_dim: int | None = None, *, what: str = "image",
               check_min_size: bool = True) -> np.ndarray:
    """Read an image as float32 RGB in [0, 255], shape (H, W, 3), downscaled so max(H, W) <= max_dim.

    ``what`` names the image in error messages ("content image", "style image").
    """
    if isinstance(source, np.ndarray):
        pixels = _array_to_rgb(source, what)
    else:
        pil = source if isinstance(source, Image.Image) else _open(Path(source), what)
        pixels = _pil_to_rgb(pil, what, source)
    original_shape = pixels.shape[:2]
    if max_dim is not None:
        pixels = resize_max_dim(pixels, max_dim)
    if check_min_size:
        check_size(pixels.shape[:2], what, downscaled=pixels.shape[:2] != original_shape)
    return pixels


def check_size(shape: tuple[int, int], what: str, *, downscaled: bool = False) -> None:
    """Reject images too small or thin for ResNet-50's 32x downsampling to leave any spatial statistics."""
    height, width = shape
    if min(height, width) < MIN_IMAGE_SIDE:
        scaled = " after downscaling to max-dim" if downscaled else ""
        raise NstkitError(
            f"{what} is {width}x{height} px{scaled}; ResNet-50 needs both sides >= {MIN_IMAGE_SIDE} px: "
            "use a larger or less elongated image" + (" or a larger max-dim" if downscaled else ""))


def _open(path: Path, what: str) -> Image.Image:
    if not path.exists():
        raise NstkitError(f"{what} not found: {path}: check the path")
    if path.is_dir():
        raise NstkitError(f"{what} {path} is a directory: give the path of an image file")
    if path.stat().st_size == 0:
        raise NstkitError(f"{what} {path} is empty (0 bytes): re-export or re-download it")
    return _decode(path, f"{what} {path}")


def load_image_bytes(data: bytes, name: str, max_dim: int | None = None, **options) -> np.ndarray:
    """`load_image` for an upload: ``data`` is the file's bytes, ``name`` what messages call it."""
    if not data:
        raise NstkitError(f"{name} is empty (0 bytes): choose another file")
    return load_image(_decode(io.BytesIO(bytes(data)), name), max_dim, what=name, **options)


def _decode(source, label: str) -> Image.Image:
    """Open and fully decode an image; every failure is one line that names ``label`` and the fix."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit; treat both as too large.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            pil = Image.open(source)
            pil.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NstkitError(
            f"{label} has more pixels than Pillow's decompression-bomb limit "
            f"({Image.MAX_IMAGE_PIXELS:,}): downscale it first, e.g. to 4096 px on the long side") from None
    except Image.UnidentifiedImageError:
        raise NstkitError(f"{label} is not an image Pillow can read: use JPEG, PNG, WebP, BMP or TIFF") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise NstkitError(f"{label} is damaged or truncated ({exc}): re-export or re-download it") from None
    return pil


def _pil_to_rgb(pil: Image.Image, what: str, source: object) -> np.ndarray:
    try:
        pil = ImageOps.exif_transpose(pil)  # phone photos store rotation in EXIF
    except Exception:  # a malformed EXIF block should not stop an otherwise fine image
        pass
    if pil.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit / 32-bit greyscale: Pillow's convert("RGB") would clip, so scale by the real range.
        grey = np.asarray(pil, dtype=np.float32)
        top = 65535.0 if pil.mode.startswith("I;16") or grey.max() > 255 else 255.0
        grey = np.clip(grey / top * 255.0, 0, 255)
        return np.repeat(grey[..., None], 3, axis=2)
    if pil.mode == "P":
        pil = pil.convert("RGBA")
    if pil.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Composite transparency on white: a transparent "black" background is not content.
        rgba = pil.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(background, rgba)
    return np.asarray(pil.convert("RGB"), dtype=np.float32)


def _array_to_rgb(array: np.ndarray, what: str) -> np.ndarray:
    pixels = np.asarray(array)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise NstkitError(f"{what} array has shape {pixels.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")
    if pixels.shape[2] == 4:
        alpha = pixels[..., 3:4].astype(np.float32) / (255.0 if pixels.dtype == np.uint8 else 1.0)
        pixels = pixels[..., :3] * alpha + (255.0 if pixels.dtype == np.uint8 else 1.0) * (1 - alpha)
    pixels = pixels.astype(np.float32)
    if np.issubdtype(np.asarray(array).dtype, np.floating) and pixels.max(initial=0) <= 1.0:
        pixels = pixels * 255.0  # floats in [0, 1], as matplotlib and skimage use
    return np.clip(pixels, 0, 255)


def resize_max_dim(pixels: np.ndarray, max_dim: int) -> np.ndarray:
    """Downscale (never upscale) so the long side is at most ``max_dim``, keeping the aspect ratio."""
    height, width = pixels.shape[:2]
    scale = max_dim / max(height, width)
    if scale >= 1:
        return pixels
    return resize_to(pixels, max(1, round(height * scale)), max(1, round(width * scale)))


def resize_to(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    if pixels.shape[:2] == (height, width):
        return pixels
    pil = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))
    return np.asarray(pil.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)


def scaled_style_shape(shape, factor: float, content_shape, what: str = "style image") -> tuple[int, int]:
    """(height, width) of a style scaled to ``factor`` times the content's long side; too small or large is one line."""
    ratio = factor * max(content_shape) / max(shape)
    height, width = (max(1, round(side * ratio)) for side in shape)
    if max(height, width) > MAX_STYLE_SIDE:
        raise NstkitError(f"style_scale {factor:g} makes the {what} {width}x{height} px, past {MAX_STYLE_SIDE} px: "
                          "use a smaller style_scale")
    if min(height, width) < MIN_IMAGE_SIDE:
        raise NstkitError(f"style_scale {factor:g} makes the {what} {width}x{height} px; ResNet-50 needs both "
                          f"sides >= {MIN_IMAGE_SIDE} px: use a larger style_scale")
    return height, width


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """RGB [0, 255] (H, W, 3) -> caffe BGR, mean-subtracted, with a batch axis: (1, H, W, 3).

    A batch (B, H, W, 3) keeps its batch axis."""
    rgb = np.asarray(rgb, dtype=np.float32)
    bgr = rgb[..., ::-1] - IMAGENET_MEAN_BGR
    return bgr if rgb.ndim == 4 else bgr[None]


def deprocess(bgr: np.ndarray) -> np.ndarray:
    """Exact inverse of `preprocess`, as float32 RGB (H, W, 3); `to_uint8` rounds for saving."""
    bgr = np.asarray(bgr, dtype=np.float32)
    if bgr.ndim == 4:
        bgr = bgr[0]
    return (bgr + IMAGENET_MEAN_BGR)[..., ::-1]


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def pixel_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Per-channel bounds of valid pixels in caffe space: [-mean, 255 - mean] (the seed clipped to these)."""
    return -IMAGENET_MEAN_BGR, 255.0 - IMAGENET_MEAN_BGR


def check_output_path(path: os.PathLike | str, inputs: tuple = (), formats: Sequence[str] | None = None) -> Path:
    """Fail early (before any compute) if ``path`` can't be written or would replace an input.

    ``formats``: the suffixes allowed (default: the image formats, `SAVE_FORMATS`)."""
    path = Path(path)
    formats = tuple(formats or SAVE_FORMATS)
    if path.suffix.lower() not in formats:
        raise NstkitError(f"output {path} must end in {', '.join(formats)}: the format follows the extension")
    for source in inputs:
        if isinstance(source, (str, os.PathLike)) and _same_file(path, Path(source)):
            raise NstkitError(f"output {path} is the same file as input {source}: "
                              "choose another output path so the input is kept")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise NstkitError(f"output folder {parent} is a file, not a folder: choose another -o path")
    if not parent.is_dir():
        raise NstkitError(f"output folder {parent} does not exist: create it or choose another -o path")
    if path.is_dir():
        raise NstkitError(f"output {path} is a directory: give a file name ending in {' or '.join(formats)}")
    try:  # a real probe: permission bits say nothing for root or on read-only mounts
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise NstkitError(f"output folder {parent} is not writable ({exc.strerror}): "
                          "choose a folder you can write to") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise NstkitError(f"output {path} exists and is not writable: choose another -o path")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


@dataclass(frozen=True)
class Encoding:
    """How an output image is written; the format itself follows the file's extension (`SAVE_FORMATS`).

    ``bit_depth`` 16 (PNG and TIFF) writes the unrounded float image, so
    smooth gradients keep 256 times the levels. Every format but WebP gets an
    sRGB ICC profile (the pixels are sRGB: that is what the network was
    shown), so colour-managed viewers and print tools show the intended colours.
    ``quality`` is JPEG's and lossy WebP's (100: lossless WebP); ``subsampling``
    is JPEG's chroma subsampling (4:4:4 keeps the style's fine colour texture).
    """

    bit_depth: int = 8
    quality: int = 95
    subsampling: str = "4:4:4"

    def check(self, path: Path) -> None:
        """One line if this encoding cannot be written to ``path``'s format."""
        if self.bit_depth not in (8, 16):
            raise NstkitError(f"bit depth must be 8 or 16, got {self.bit_depth}")
        image_format = SAVE_FORMATS.get(path.suffix.lower())
        if self.bit_depth == 16 and image_format not in SIXTEEN_BIT_FORMATS:
            raise NstkitError(f"--bit-depth 16 needs a .png or .tif output, not {path.suffix}: "
                              "change the extension or use --bit-depth 8")
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or not 1 <= self.quality <= 100:
            raise NstkitError(f"quality must be a whole number from 1 to 100, got {self.quality!r}")
        if self.subsampling not in SUBSAMPLING:
            raise NstkitError(f"subsampling must be one of {', '.join(SUBSAMPLING)}, got {self.subsampling!r}")

    def describe(self, path: Path) -> dict:
        """What the run record says of the written file."""
        image_format = SAVE_FORMATS[path.suffix.lower()]
        return {"format": image_format, "bit_depth": self.bit_depth,
                "icc_profile": "sRGB" if image_format != "WEBP" else None,
                **({"quality": self.quality} if image_format in ("JPEG", "WEBP") else {}),
                **({"subsampling": self.subsampling} if image_format == "JPEG" else {})}


def save_image(path: os.PathLike | str, rgb: np.ndarray, *, protect: tuple = (),
               encoding: Encoding = Encoding()) -> Path:
    """Write ``rgb`` (float or uint8 RGB in [0, 255]) atomically: a temp file in the same folder, then `os.replace`.

    ``protect`` lists input paths that must never be replaced.
    """
    path = check_output_path(path, protect)
    encoding.check(path)
    image_format = SAVE_FORMATS[path.suffix.lower()]
    with atomic_write(path) as handle:
        if encoding.bit_depth == 16:
            _write_16_bit(handle, image_format, to_uint16(rgb))
        elif image_format == "TIFF":
            handle.write(_tiff_bytes(_uint8(rgb)))
        else:
            options = {"PNG": {"icc_profile": srgb_profile()},
                       "JPEG": {"quality": encoding.quality, "subsampling": SUBSAMPLING[encoding.subsampling],
                                "icc_profile": srgb_profile()},
                       "WEBP": ({"lossless": True} if encoding.quality == 100 else {"quality": encoding.quality})}
            Image.fromarray(_uint8(rgb)).save(handle, format=image_format, **options[image_format])
    return path


def to_uint16(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 255] as 16-bit levels (0-65535), rounded once from the unrounded image."""
    return np.round(np.clip(np.asarray(rgb, np.float64), 0, 255) * (65535 / 255)).astype(np.uint16)


def _uint8(rgb: np.ndarray) -> np.ndarray:
    return rgb if rgb.dtype == np.uint8 else to_uint8(rgb)


def _write_16_bit(handle, image_format: str, rgb16: np.ndarray) -> None:
    if image_format == "TIFF":
        handle.write(_tiff_bytes(rgb16))
        return
    import cv2  # Pillow writes 16-bit PNGs of one channel only; OpenCV writes RGB (as BGR)

    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb16[..., ::-1]))
    if not ok:
        raise NstkitError("OpenCV could not encode the 16-bit PNG")
    handle.write(_with_icc_chunk(encoded.tobytes(), srgb_profile()))


def _tiff_bytes(rgb: np.ndarray) -> bytes:
    """An RGB TIFF (8 or 16 bits, deflate-compressed) with the sRGB profile, in memory: tifffile wants a named file."""
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, rgb, photometric="rgb", iccprofile=srgb_profile(), compression="zlib")
    return buffer.getvalue()


def _with_icc_chunk(png: bytes, profile: bytes) -> bytes:
    """``png`` with an iCCP chunk (PNG spec 11.3.3.3) after its IHDR: OpenCV writes no colour profile."""
    import struct
    import zlib

    body = b"sRGB\x00\x00" + zlib.compress(profile)  # profile name, NUL, compression method 0 (deflate)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, type, 13 data bytes and CRC
    return png[:ihdr_end] + chunk + png[ihdr_end:]


_SRGB: list[bytes] = []


def srgb_profile() -> bytes:
    """Little CMS's sRGB profile, as bytes (made once), with a fixed creation date so outputs are reproducible.

    Little CMS stamps the time it made the profile into its header (ICC.1
    7.2.8), which would make two runs of the same seed differ in their bytes.
    The date is set to 2000-01-01 and the optional profile ID, an MD5 that
    covers it, to zero ("not computed", which 7.2.18 allows).
    """
    if not _SRGB:
        import struct

        from PIL import ImageCms

        profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
        profile[24:36] = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)
        profile[84:100] = bytes(16)
        _SRGB.append(bytes(profile))
    return _SRGB[0]


def sample(name: str) -> Path:
    """The path of a bundled sample image by file name: ``nstkit.sample("chelsea.jpg")``.

    Content: astronaut.jpg, chelsea.jpg, coffee.jpg, rocket.jpg; style: hexagons.png, mosaic.png, strokes.png,
    waves.png (`sample_names()`). A path works everywhere an image does: the command line, `stylize`, sweeps.
    """
    matches = sorted(BUNDLED_IMAGES.glob(f"*/{name}"))
    if not matches:
        raise NstkitError(f"{name} is not a bundled sample image: choose one of {', '.join(sample_names())}")
    return matches[0]


def sample_names() -> list[str]:
    """The bundled sample images' file names, content first."""
    return [path.name for kind in ("content", "style") for path in sorted((BUNDLED_IMAGES / kind).iterdir())
            if path.suffix.lower() in (".jpg", ".png")]


def bundled_image(name: str, max_dim: int | None = None) -> np.ndarray:
    """A bundled sample image by file name, e.g. ``bundled_image("hexagons.png", 512)``, as uint8 RGB."""
    return load_image(sample(name), max_dim).astype(np.uint8)
