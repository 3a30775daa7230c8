"""The library builds as a wheel, and a plain (not editable) install of it into a fresh
virtual environment imports and works."""
import os, subprocess, sys, shutil, venv
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r

@pytest.mark.slow
def test_wheel_installs_and_works(tmp_path):
    dist = tmp_path/'dist'
    _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-w', str(dist), str(ROOT)])
    wheels = list(dist.glob('assembly_line-*.whl'))
    assert len(wheels) == 1, wheels
    env_dir = tmp_path/'venv'
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir/'bin'/'python'
    # A plain install: pip resolves the wheel's own requirements (torch pinned to the CPU build).
    _run([str(py), '-m', 'pip', 'install', '-q', str(wheels[0])])
    # Run from a folder without the source tree, so the installed copy is what gets imported.
    code = ("import assembly_line, assembly_line.core as c, pathlib;"
            "assert 'site-packages' in assembly_line.__file__, assembly_line.__file__;"
            "import pandas as pd; print(c.data_hash(pd.DataFrame({'a':[1,2]})));"
            "print(assembly_line.__version__)")
    r = _run([str(py), '-c', code], cwd=tmp_path)
    assert len(r.stdout.split()[0]) == 64
    exe = env_dir/'bin'/'assembly-line'
    if (ROOT/'assembly_line'/'cli.py').exists():
        r = _run([str(exe), '--help'], cwd=tmp_path)
        assert 'usage' in r.stdout.lower()
        r = _run([str(exe), 'run', '--list'], cwd=tmp_path)      # the line notebooks ship in the wheel
        assert 'line' in r.stdout and 'site-packages' in r.stdout, r.stdout
