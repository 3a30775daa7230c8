"""Author notebooks as percent-format scripts and convert them, or the other way round.

    python tools/nbsync.py to-nb  SRC.py  nbs/NN_name.ipynb   # script -> clean notebook
    python tools/nbsync.py to-py  nbs/NN_name.ipynb  SRC.py   # notebook -> script for editing

The notebook in nbs/ stays the source of truth; scripts are scratch copies (keep them out of git).
Cell tags (e.g. papermill's `parameters`) survive both ways.
"""
import json, sys, subprocess
import jupytext

def to_nb(src, dst):
    nb = jupytext.read(src, fmt='py:percent')
    nb.metadata = {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
    for c in nb.cells: c.metadata = {k: v for k, v in c.metadata.items() if k == 'tags'}
    jupytext.write(nb, dst, fmt='ipynb')
    subprocess.run(['nbdev_clean', '--fname', dst], check=True)

def to_py(src, dst):
    jupytext.write(jupytext.read(src), dst, fmt='py:percent')

if __name__ == '__main__':
    cmd, src, dst = sys.argv[1:4]
    {'to-nb': to_nb, 'to-py': to_py}[cmd](src, dst)
