"""The library builds as a wheel, and a plain (not editable) install of it with the `data` extra into a fresh
virtual environment imports, works, and runs the README's quickstart."""
import os, re, subprocess, sys, shutil, venv
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def _run(cmd, **kw):
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}     # the fresh venv imports only what it installed
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
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
    # A plain install: pip resolves the wheel's own requirements (torch pinned to the CPU build) and the `data`
    # extra, which is all the README's quickstart promises to need.
    _run([str(py), '-m', 'pip', 'install', '-q', f'{wheels[0]}[data]'])
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

    # The quickstart, as the README prints it (a shorter budget: the test checks that it runs, not how well).
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if 'load_example' in b]
    assert len(blocks) == 1, "the README has one quickstart block that loads an example"
    code, n = re.subn(r'time_budget=\d+', 'time_budget=10', blocks[0])
    assert n == 1, "the quickstart sets one time budget"
    code += "\nprint('quickstart ok', len(line.leaderboard), len(AssemblyLine.load('models/churn').predict(df.head())))"
    r = _run([str(py), '-c', code], cwd=tmp_path)
    ok = r.stdout.split('quickstart ok')[-1].split()
    assert len(ok) == 2 and int(ok[0]) >= 1 and ok[1] == '5', r.stdout     # a ranked model; five rows predicted
    assert (tmp_path/'models'/'churn'/'manifest.json').exists()
