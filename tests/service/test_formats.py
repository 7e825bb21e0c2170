"""Upload formats: MP3 and OGG/Opus decode through libsndfile; AAC/M4A get a 415 that names them."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tests.service.svc_helpers import decode, encode, tone


def test_libsndfile_reads_mp3_and_opus() -> None:
    assert "MP3" in sf.available_formats() and "OPUS" in sf.available_subtypes("OGG")
    major, minor = (int(p) for p in sf.__libsndfile_version__.split(".")[:2])
    assert (major, minor) >= (1, 1)  # MP3 arrived in libsndfile 1.1.0, Opus in 1.0.29


@pytest.mark.parametrize("fmt,subtype,sr,channels,name,mime", [
    ("MP3", "MPEG_LAYER_III", 44100, 2, "speech.mp3", "audio/mpeg"),
    ("MP3", "MPEG_LAYER_III", 16000, 1, "speech.mp3", "audio/mpeg"),
    ("OGG", "OPUS", 48000, 1, "speech.opus", "audio/ogg"),
    ("OGG", "OPUS", 16000, 2, "speech.ogg", "audio/opus"),
])
def test_mp3_and_opus_uploads_are_denoised(client: TestClient, fmt: str, subtype: str, sr: int, channels: int,
                                           name: str, mime: str) -> None:
    data = encode(tone(300, sr, seconds=1.0, channels=channels), sr, fmt, subtype)
    sent, sent_sr, info = decode(data)
    assert (info.format, info.subtype) == (fmt, subtype)
    r = client.post("/denoise", files={"file": (name, data, mime)})
    assert r.status_code == 200, r.text
    y, out_sr, out_info = decode(r.content)
    assert out_sr == sent_sr == sr and y.shape == sent.shape and out_info.subtype == "PCM_16"
    edge = sr // 20  # the pass-through model returns what libsndfile decoded
    np.testing.assert_allclose(y[edge:-edge], sent[edge:-edge], atol=3e-3)


def m4a_bytes() -> bytes:
    """The opening of an iTunes-style M4A: an ``ftyp`` box, then ``free`` and ``mdat`` boxes."""
    ftyp = b"M4A " + struct.pack(">I", 512) + b"M4A mp42isom\x00\x00\x00\x00"
    boxes = struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp
    boxes += struct.pack(">I", 8) + b"free"
    payload = bytes(range(256)) * 4
    return boxes + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload


def adts_bytes() -> bytes:
    """Raw AAC in ADTS frames (sync word 0xFFF, layer 0), as ``.aac`` files hold it."""
    frame = bytes([0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC]) + b"\x21\x00" * 4
    return frame * 20


@pytest.mark.parametrize("data,name,mime,named", [
    (m4a_bytes(), "voice.m4a", "audio/mp4", "M4A"),
    (m4a_bytes(), "voice.m4a", "application/octet-stream", "M4A"),
    (adts_bytes(), "voice.aac", "audio/aac", "AAC"),
])
def test_aac_and_m4a_get_415_naming_the_format(client: TestClient, data: bytes, name: str, mime: str,
                                               named: str) -> None:
    with pytest.raises(Exception):
        sf.info(io.BytesIO(data))  # really not readable by libsndfile
    r = client.post("/denoise", files={"file": (name, data, mime)})
    assert r.status_code == 415
    error = r.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert named in error["message"] and "not supported" in error["message"]


def test_garbage_still_gets_400(client: TestClient) -> None:
    r = client.post("/denoise", files={"file": ("x.wav", b"RIFF\x00\x00garbage" * 10, "audio/wav")})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_audio"
