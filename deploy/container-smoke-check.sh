#!/usr/bin/env bash
# The container smoke check of a shipped model: `../shared/tools/container-smoke.sh . 'bash deploy/container-smoke-check.sh NAME'`
# fetches /model-info and requires the model NAME, then POSTs a 3-s WAV to /denoise and requires audio back.
set -euo pipefail
name=${1:?usage: container-smoke-check.sh MODEL_NAME}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/in.wav" <<'PY'
import math, struct, sys, wave
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(b"".join(struct.pack("<h", int(6000 * math.sin(2 * math.pi * 220 * n / 16000))) for n in range(48000)))
PY
curl -fsS "http://127.0.0.1:$PORT/model-info" > "$work/info.json"
head -c 300 "$work/info.json"; echo
python3 -c "import json, sys; info = json.load(open(sys.argv[1])); assert info['name'] == sys.argv[2], info['name']" "$work/info.json" "$name"
curl -fsS -F "file=@$work/in.wav" "http://127.0.0.1:$PORT/denoise" -o "$work/out.wav" -D "$work/headers.txt"
grep -i "^x-inference-time\|^content-type" "$work/headers.txt"
python3 -c "import sys, wave; w = wave.open(sys.argv[1]); assert w.getnframes() == 48000, w.getnframes(); print('denoised frames', w.getnframes())" "$work/out.wav"
