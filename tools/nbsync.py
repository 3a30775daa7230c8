"""Author notebooks as percent-format scripts and convert them, or the other way round.

    python tools/nbsync.py to-nb  SRC.py  nbs/NN_name.ipynb   # script -> clean notebook
    python tools/nbsync.py to-py  nbs/NN_name.ipynb  SRC.py   # notebook -> script for editing

The notebook in nbs/ stays the source of truth; scripts are scratch copies (keep them out of git).
Cell tags (e.g. papermill's `parameters`) survive both ways. When the notebook already exists, cells keep
their ids (unchanged cells, and edited cells matched in place), so an edit shows as a diff of the cells it touched.
"""
import difflib, json, sys, subprocess
from pathlib import Path
import jupytext

def _keep_ids(new_cells, dst):
    "Give `new_cells` the ids of the matching cells of the notebook at `dst`."
    old = json.loads(Path(dst).read_text())['cells']
    src = lambda c: ''.join(c['source']) if isinstance(c['source'], list) else c['source']
    a, b = [src(c) for c in old], [src(c) for c in new_cells]
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ('equal', 'replace'):
            for i, j in zip(range(i1, i2), range(j1, j2)):
                if 'id' in old[i]: new_cells[j]['id'] = old[i]['id']

def to_nb(src, dst):
    nb = jupytext.read(src, fmt='py:percent')
    nb.metadata = {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
    for c in nb.cells: c.metadata = {k: v for k, v in c.metadata.items() if k == 'tags'}
    if Path(dst).exists(): _keep_ids(nb.cells, dst)
    jupytext.write(nb, dst, fmt='ipynb')
    subprocess.run(['nbdev_clean', '--fname', dst], check=True)

def to_py(src, dst):
    jupytext.write(jupytext.read(src), dst, fmt='py:percent')

if __name__ == '__main__':
    cmd, src, dst = sys.argv[1:4]
    {'to-nb': to_nb, 'to-py': to_py}[cmd](src, dst)
