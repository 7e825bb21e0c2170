"""Upload checks, decoding and encoding for the service.

Order of checks on an upload, cheapest first, so a hostile file costs little:

1. declared media type (415) - :func:`check_media_type`
2. byte size, counted while the upload streams in (413) - :func:`read_upload` and
   the upload guard middleware in :mod:`service.middleware`
3. the header, via ``soundfile.info`` - sample rate, channels and duration (413 for
   too long, before any sample is decoded) - :func:`probe`
4. full decode via :func:`denoise_core.signal.decode_audio` (400 for undecodable,
   empty, truncated or non-finite audio) - :func:`decode`
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import soundfile as sf
from fastapi import UploadFile

from denoise_core.signal import AudioDecodeError, decode_audio
from service.errors import ServiceError, bad_audio, too_large, unsupported_media

OutputFormat = Literal["wav", "flac"]
MEDIA_TYPES: dict[str, str] = {"wav": "audio/wav", "flac": "audio/flac"}
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
READ_BLOCK = 1 << 20

#: declared part types accepted besides audio/* (clients often send these for any file)
_ACCEPTED_TYPES = {
    "application/octet-stream", "application/ogg", "application/x-ogg", "video/ogg",
    "application/flac", "application/x-flac", "application/wav", "application/x-wav", "binary/octet-stream",
}


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int
    max_duration_seconds: float
    max_channels: int


@dataclass(frozen=True)
class AudioHeader:
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


_OPENING = re.compile(r"^(could not decode audio: )?Error opening <[^>]*>: ")


def _clean(message: str) -> str:
    """libsndfile messages name the in-memory buffer object; keep only the reason."""
    return "could not decode audio: " + _OPENING.sub("", message) if _OPENING.match(message) else message


def unsupported_container(data: bytes) -> str | None:
    """Name a common audio format libsndfile does not read, from its first bytes (None if not one)."""
    head = data[:16]
    if head[4:8] == b"ftyp":
        return "MP4/M4A (AAC or ALAC)"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "AAC (ADTS)"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "WebM/Matroska"
    if head.startswith(b"#!AMR"):
        return "AMR"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "WMA/ASF"
    return None


def check_media_type(content_type: str | None) -> None:
    """415 for a declared type that is clearly not audio; missing or generic types pass."""
    if not content_type:
        return
    main = content_type.split(";", 1)[0].strip().lower()
    if not main or main.startswith("audio/") or main in _ACCEPTED_TYPES:
        return
    raise unsupported_media(f"unsupported media type {main!r}: upload an audio file "
                            "(WAV, FLAC, OGG/Vorbis or another format libsndfile reads)")


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """Read an upload in blocks, refusing with 413 as soon as it passes ``max_bytes``."""
    buf = bytearray()
    while True:
        block = await upload.read(READ_BLOCK)
        if not block:
            break
        buf.extend(block)
        if len(buf) > max_bytes:
            raise too_large(f"upload exceeds the limit of {max_bytes} bytes")
    return bytes(buf)


def probe(data: bytes, limits: Limits) -> AudioHeader:
    """Read the header only; enforce sample-rate, channel and duration limits."""
    if not data:
        raise bad_audio("the uploaded file is empty")
    try:
        info = sf.info(io.BytesIO(data))
    except Exception as exc:  # libsndfile raises several types
        known = unsupported_container(data)
        if known:
            raise unsupported_media(f"{known} is not supported: convert it to WAV, FLAC, MP3 or OGG "
                                    "(Vorbis or Opus) first, e.g. `ffmpeg -i in.m4a out.flac`") from exc
        raise bad_audio(_clean(f"could not decode audio: {exc}")) from exc
    header = AudioHeader(int(info.samplerate), int(info.channels), int(info.frames), str(info.format), str(info.subtype))
    check_shape(header.sample_rate, header.channels, header.frames, limits)
    return header


def check_shape(sample_rate: int, channels: int, frames: int, limits: Limits) -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise bad_audio(f"sample rate {sample_rate} Hz is outside the supported {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    if channels < 1:
        raise bad_audio("audio has no channels")
    if channels > limits.max_channels:
        raise too_large(f"{channels} channels exceed the limit of {limits.max_channels}")
    if frames <= 0:
        raise bad_audio("audio contains no samples")
    duration = frames / sample_rate
    if duration > limits.max_duration_seconds:
        raise too_large(f"audio lasts {duration:.1f} s, over the limit of {limits.max_duration_seconds:g} s")


def decode(data: bytes, limits: Limits) -> tuple[np.ndarray, int]:
    """Decode to float32 ``(frames, channels)``; 400 for undecodable or non-finite audio."""
    try:
        audio, sr = decode_audio(data)
    except AudioDecodeError as exc:
        raise bad_audio(_clean(str(exc))) from exc
    # the header may have understated the length: check what was actually decoded
    check_shape(sr, audio.shape[1], audio.shape[0], limits)
    return audio, sr


def output_subtype(input_subtype: str, fmt: OutputFormat) -> str:
    """Keep the input's sample format where the output container allows it.

    WAV: integer PCM keeps its width (8-bit signed becomes 16-bit), FLOAT and DOUBLE stay
    float; lossy or companded input (Vorbis, MP3, u-law, ADPCM, ...) becomes PCM_16.
    FLAC: integer PCM up to 24-bit keeps its width; wider or float input becomes PCM_24.
    """
    subtype = (input_subtype or "").upper()
    if fmt == "flac":
        if subtype in ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24"):
            return "PCM_16" if subtype == "PCM_U8" else subtype
        if subtype in ("PCM_32", "FLOAT", "DOUBLE"):
            return "PCM_24"
        return "PCM_16"
    if subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        return subtype
    return "PCM_16"


def encode(audio: np.ndarray, sample_rate: int, fmt: OutputFormat, subtype: str) -> bytes:
    """Encode float audio in [-1, 1] as WAV or FLAC bytes."""
    out = io.BytesIO()
    sf.write(out, np.clip(audio, -1.0, 1.0), sample_rate, format=fmt.upper(), subtype=subtype)
    return out.getvalue()


__all__ = ["AudioHeader", "Limits", "OutputFormat", "MEDIA_TYPES", "ServiceError", "check_media_type",
           "read_upload", "probe", "decode", "output_subtype", "encode"]
