#!/usr/bin/env bash
# Build the static documentation site (mkdocs.yml) into _site/, offline, without executing any notebook:
#   _docs_src/ gets README.md (as index.md, the home page), benchmarks/RESULTS.md (README links it) and
#   nbs/*.ipynb; then `mkdocs build --strict` renders them (mkdocs-jupyter for the notebooks), failing on
#   any warning such as a broken link. Open _site/index.html in a browser. mkdocs-jupyter caches each
#   converted notebook in .cache/ (gitignored), so a rebuild renders only the notebooks that changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export NO_MKDOCS_2_WARNING=1   # silence the theme's end-of-life banner on every build
MKDOCS=${MKDOCS:-.venv/bin/mkdocs}
[ -x "$MKDOCS" ] || MKDOCS=mkdocs
rm -rf _docs_src _site
mkdir -p _docs_src/benchmarks
cp README.md _docs_src/index.md
cp benchmarks/RESULTS.md _docs_src/benchmarks/RESULTS.md
cp nbs/*.ipynb _docs_src/
"$MKDOCS" build --strict --quiet
echo "[docs] site in _site/ ($(ls _site/*.html | wc -l) pages): open _site/index.html"
