#!/usr/bin/env bash
# The project's test command (README, .ci/run): fails if any part fails.
#   1. bootstrap .venv (editable install with everything tests need)
#   2. the exported library is in sync with the notebooks, and the notebooks are clean
#   3. the notebooks' tests (nbdev's test_nb, slow cells included; FAST=1 skips them), each notebook in its own
#      process group with a time limit (tools/test_nbs.py), so a notebook that leaves a thread or a process
#      behind cannot keep CI waiting
#   4. the documentation site builds (tools/docs.sh: mkdocs --strict, notebooks unexecuted) and has its pages
#   5. pytest over tests/ (ends on pytest's summary line)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
bash tools/system_deps.sh
. .venv/bin/activate
export PYTHONHASHSEED=0 MPLBACKEND=Agg OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

echo "== 1/4 library in sync with notebooks, notebooks clean"
snap() { { find assembly_line -type f -name '*.py' -not -path '*/__pycache__/*' -print0
           find nbs -type f -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' -print0; } | sort -z | xargs -0 sha256sum; }
before=$(snap)
nbdev_export
nbdev_clean
after=$(snap)
if [ "$before" != "$after" ]; then
  echo "FAILED: nbdev_export/nbdev_clean changed these files (export or clean the notebooks and commit):"
  diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print "   " $3}' | sort -u
  exit 1
fi
echo "in sync"

echo "== 2/4 notebook tests over nbs/"
flags="slow postgres dask"; [ "${FAST:-0}" = "1" ] && flags=""
python tools/test_nbs.py --path nbs --flags "$flags" --n_workers 2 --timeout 900 --retries 1

echo "== 3/4 docs site builds"
bash tools/docs.sh
for page in _site/index.html _site/10_data.html; do
  [ -s "$page" ] || { echo "FAILED: tools/docs.sh did not write $page"; exit 1; }
done

echo "== 4/4 pytest over tests/"
pytest tests --durations=15 "$@"
