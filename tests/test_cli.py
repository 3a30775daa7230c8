"""The `assembly-line` command through a subprocess of the installed console script: help, fit → predict on CSV and
Parquet (with and without --proba), bad input as one line on stderr with a non-zero exit, run and batch."""
import shutil, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from assembly_line.datasets import load_example

EXE = shutil.which('assembly-line') or str(Path(sys.executable).parent/'assembly-line')


def cli(*args, timeout=300, cwd=None):
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def one_line_error(p):
    "A failure: non-zero exit, exactly one line on stderr (after any warnings), no traceback."
    assert p.returncode != 0, p.stdout
    lines = [l for l in p.stderr.splitlines() if l.startswith('error:')]
    assert len(lines) == 1, p.stderr
    assert 'Traceback' not in p.stderr, p.stderr
    return lines[0]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp('cli')
    peng = load_example('penguins')
    peng.to_csv(d/'penguins.csv', index=False)
    peng.drop(columns='species').to_parquet(d/'penguins_new.parquet')
    load_example('cars').to_parquet(d/'cars.parquet')
    return d


@pytest.fixture(scope='module')
def penguins_model(data):
    p = cli('fit', data/'penguins.csv', '--target', 'species', '--time-budget', 15, '--jobs', 1, '--include', 'linear,random_forest', '--deterministic',
            '--seed', 1, '--out', data/'peng_model')
    assert p.returncode == 0, p.stderr
    return data/'peng_model', p.stdout


def test_help_documents_every_command_and_option():
    p = cli('--help')
    assert p.returncode == 0
    for c in ('fit', 'predict', 'demo', 'run', 'batch'): assert c in p.stdout
    opts = {'fit': ['--target', '--time-budget', '--metric', '--seed', '--include', '--out'],
            'predict': ['MODEL_DIR', 'DATA', '--out', '--proba'],
            'demo': ['--example', '--time-budget'],
            'run': ['NOTEBOOK', '--param', '--params-file', '--out-dir'],
            'batch': ['PARAMS_DIR', '--grid', '--notebook', '--workers', '--scheduler']}
    for cmd, need in opts.items():
        h = cli(cmd, '--help')
        assert h.returncode == 0, h.stderr
        for o in need: assert o in h.stdout, (cmd, o)


def test_usage_errors_exit_2():
    assert cli('fit').returncode == 2
    assert cli('no-such-command').returncode == 2
    assert cli('fit', 'x.csv', '--target', 'y', '--out', 'm', '--time-budget', '-5').returncode == 2


def test_bad_input_is_one_line(data, tmp_path):
    e = one_line_error(cli('fit', data/'missing.csv', '--target', 'species', '--out', tmp_path/'m'))
    assert 'missing.csv' in e
    e = one_line_error(cli('fit', data/'penguins.csv', '--target', 'spieces', '--out', tmp_path/'m'))
    assert "column='spieces'" in e and "'species'" in e
    e = one_line_error(cli('fit', data/'penguins.csv', '--target', 'species', '--metric', 'accuracy_score', '--out', tmp_path/'m'))
    assert 'accuracy_score' in e and 'ConfigError' in e
    e = one_line_error(cli('predict', tmp_path/'no_model', data/'penguins.csv', '--out', tmp_path/'p.csv'))
    assert 'no_model' in e
    (tmp_path/'garbage.parquet').write_bytes(b'not parquet at all')
    one_line_error(cli('fit', tmp_path/'garbage.parquet', '--target', 'species', '--out', tmp_path/'m'))
    assert not (tmp_path/'m').exists()


def test_debug_shows_the_traceback(data, tmp_path):
    p = cli('fit', data/'missing.csv', '--target', 'species', '--out', tmp_path/'m', '--debug')
    assert p.returncode != 0 and 'Traceback' in p.stderr


@pytest.mark.slow
def test_fit_prints_summary_and_leaderboard(penguins_model):
    model, out = penguins_model
    assert 'best' in out and 'multiclass' in out and 'log_loss' in out
    assert '| model' in out.replace('|   model', '| model') or 'model' in out.splitlines()[3]
    assert (model/'manifest.json').exists() and (model/'model.skops').exists()


@pytest.mark.slow
def test_fit_refuses_to_overwrite(penguins_model, data):
    model, _ = penguins_model
    e = one_line_error(cli('fit', data/'penguins.csv', '--target', 'species', '--out', model))
    assert '--overwrite' in e


@pytest.mark.slow
@pytest.mark.parametrize('src', ['penguins.csv', 'penguins_new.parquet'])
def test_predict_labels_and_probabilities(penguins_model, data, tmp_path, src):
    model, _ = penguins_model
    truth = load_example('penguins').species
    p = cli('predict', model, data/src, '--out', tmp_path/'pred.csv')
    assert p.returncode == 0, p.stderr
    pred = pd.read_csv(tmp_path/'pred.csv')
    assert list(pred.columns) == ['prediction'] and len(pred) == len(truth)
    assert (pred.prediction == truth).mean() > 0.9
    p = cli('predict', model, data/src, '--out', tmp_path/'sub'/'proba.csv', '--proba')
    assert p.returncode == 0, p.stderr
    pr = pd.read_csv(tmp_path/'sub'/'proba.csv')
    assert list(pr.columns) == ['prediction', 'proba_Adelie', 'proba_Chinstrap', 'proba_Gentoo']
    assert ((pr.filter(like='proba_').sum(axis=1) - 1).abs() < 1e-6).all()
    assert (pr.filter(like='proba_').idxmax(axis=1).str.removeprefix('proba_') == pr.prediction).all()
    assert (pr.prediction == pred.prediction).all()


@pytest.mark.slow
def test_regression_from_parquet(data, tmp_path):
    # --deterministic: counts, not the clock, so a busy machine cannot starve the fit (the budget has its own tests)
    p = cli('fit', data/'cars.parquet', '--target', 'Miles_per_Gallon', '--time-budget', 15, '--jobs', 1, '--include', 'linear',
            '--metric', 'mae', '--deterministic', '--out', tmp_path/'cars')
    assert p.returncode == 0, p.stderr
    assert 'regression' in p.stdout and 'mae' in p.stdout
    p = cli('predict', tmp_path/'cars', data/'cars.parquet', '--out', tmp_path/'cars.csv')
    assert p.returncode == 0, p.stderr
    pred = pd.read_csv(tmp_path/'cars.csv')
    cars = load_example('cars')
    ok = cars.Miles_per_Gallon.notna()
    assert (pred.prediction[ok] - cars.Miles_per_Gallon[ok]).abs().mean() < 5
    e = one_line_error(cli('predict', tmp_path/'cars', data/'cars.parquet', '--out', tmp_path/'x.csv', '--proba'))
    assert 'classification' in e


@pytest.mark.slow
def test_demo_prints_stage_one():
    p = cli('demo', '--example', 'titanic')
    assert p.returncode == 0, p.stderr
    for part in ('titanic', '## cleaning', '## schema', '## profile', '## split'): assert part in p.stdout


@pytest.mark.slow
def test_run_writes_the_executed_notebook_and_manifest(tmp_path):
    p = cli('run', 'data', '-p', 'sample', '100', '-p', 'example', 'cars', '--out-dir', tmp_path/'r')
    assert p.returncode == 0, p.stderr
    assert (tmp_path/'r'/'01_data.ipynb').exists() and (tmp_path/'r'/'run_manifest.json').exists()
    assert 'stages (s)' in p.stdout
    e = one_line_error(cli('run', 'data', '-p', 'exampel', 'cars', '--out-dir', tmp_path/'x'))
    assert "unknown parameter 'exampel'" in e
    e = one_line_error(cli('run', 'data', '-p', 'example', 'nope', '--out-dir', tmp_path/'f'))
    assert '01_data.ipynb cell' in e and 'ConfigError' in e
    assert cli('run', '--list').returncode == 0


@pytest.mark.slow
def test_batch_grid_with_a_failing_run(tmp_path):
    (tmp_path/'grid.yaml').write_text('example: [penguins, no_such_data]\nsample: 100\n')
    p = cli('batch', '--grid', tmp_path/'grid.yaml', '--notebook', 'data', '--workers', 2, '--out-dir', tmp_path/'b', '--quiet')
    assert p.returncode == 1
    assert '000_example-penguins' in p.stdout and '001_example-no_such_data' in p.stdout
    assert '1 ok, 1 failed' in p.stdout
    assert 'run 001_example-no_such_data failed' in p.stderr and 'ConfigError' in p.stderr
    assert '[batch ' not in p.stderr, p.stderr                       # --quiet: no progress lines
    assert (tmp_path/'b'/'000_example-penguins'/'run_manifest.json').exists()

@pytest.mark.slow
def test_registry_and_serve_commands(penguins_model, data, tmp_path):
    "register → promote → rollback → versions through the installed command, then `serve` answers over HTTP."
    import socket, time, httpx
    model_dir, _ = penguins_model
    st = ['--store', f"sqlite:///{tmp_path/'store.sqlite'}"]
    for args in (['register', model_dir, '--name', 'peng', '--alias', 'champion'],
                 ['register', model_dir, '--name', 'peng'], ['promote', 'peng', '2'], ['rollback', 'peng']):
        p = cli(*args, *st)
        assert p.returncode == 0, p.stderr
    p = cli('versions', 'peng', *st)
    assert p.returncode == 0 and 'champion' in p.stdout
    p = cli('rollback', 'peng', *st)
    one_line_error(p)
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    srv = subprocess.Popen([str(EXE), 'serve', 'peng@champion', '--port', str(port), *st],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if httpx.get(url + '/health', timeout=2).status_code == 200: break
            except httpx.HTTPError: pass
            if srv.poll() is not None: raise AssertionError(srv.stderr.read())
            time.sleep(0.5)
        row = pd.read_csv(data/'penguins.csv').drop(columns='species').iloc[0].to_dict()
        r = httpx.post(url + '/predict', json=row, timeout=30)
        assert r.status_code == 200 and r.json()['predictions'][0] in ('Adelie', 'Chinstrap', 'Gentoo'), r.text
        assert httpx.get(url + '/model', timeout=10).json()['version'] == 1
    finally:
        srv.terminate(); srv.wait(30)


@pytest.mark.slow
def test_predict_explain_round_trip(penguins_model, data, tmp_path):
    "predict --explain: contrib_<column> per input column + base_value (+ explained_class), adding up to the written probability."
    model, _ = penguins_model
    peng = load_example('penguins').head(25)
    peng.drop(columns='species').assign(penguin_id=range(25)).to_csv(tmp_path/'few.csv', index=False)
    p = cli('predict', model, tmp_path/'few.csv', '--out', tmp_path/'ex.csv', '--explain', '--proba', '--keep', 'penguin_id')
    assert p.returncode == 0, p.stderr
    ex = pd.read_csv(tmp_path/'ex.csv')
    contrib = [c for c in ex.columns if c.startswith('contrib_')]
    assert {c.removeprefix('contrib_') for c in contrib} == set(peng.columns) - {'species'} - {'rowid'}, contrib
    assert ex.columns[0] == 'penguin_id' and list(ex.penguin_id) == list(range(25))
    assert (ex.explained_class == ex.prediction).all()
    chosen = ex.apply(lambda r: r[f'proba_{r.explained_class}'], axis=1)
    assert ((ex[contrib].sum(axis=1) + ex.base_value - chosen).abs() < 1e-6).all()
    # bad input: as for predict, one error line naming the column
    peng.drop(columns=['species', 'island']).to_csv(tmp_path/'bad.csv', index=False)
    e = one_line_error(cli('predict', model, tmp_path/'bad.csv', '--out', tmp_path/'x.csv', '--explain'))
    assert 'island' in e


@pytest.mark.slow
def test_predict_explain_draws_the_background_from_the_bundle_reference(penguins_model, tmp_path):
    "A bundle with a monitoring reference: the non-tree member's background comes from it, not from DATA (same base value whatever is scored)."
    from assembly_line.line import AssemblyLine
    from assembly_line.reference import make_reference, write_reference
    from assembly_line.explain import LineExplainer
    model, _ = penguins_model
    assert LineExplainer(AssemblyLine.load(model)).method != 'tree'       # the linear member needs a background
    folder = tmp_path/'with_ref'; shutil.copytree(model, folder)
    peng = load_example('penguins')
    write_reference(folder, make_reference(peng.drop(columns='species'), AssemblyLine.load(folder).schema_))
    peng.drop(columns='species').iloc[[0, 1, 2]].to_csv(tmp_path/'a.csv', index=False)
    peng.drop(columns='species').iloc[[0, 150, 300]].to_csv(tmp_path/'b.csv', index=False)
    runs = {}
    for name in ('a', 'b'):
        p = cli('predict', folder, tmp_path/f'{name}.csv', '--out', tmp_path/f'e{name}.csv', '--explain', '--proba')
        assert p.returncode == 0, p.stderr
        assert 'monitoring reference' in p.stdout, p.stdout
        runs[name] = pd.read_csv(tmp_path/f'e{name}.csv')
    for ex in runs.values():
        contrib = [c for c in ex.columns if c.startswith('contrib_')]
        chosen = ex.apply(lambda r: r[f'proba_{r.explained_class}'], axis=1)
        assert ((ex[contrib].sum(axis=1) + ex.base_value - chosen).abs() < 1e-6).all()
    assert abs(runs['a'].base_value[0] - runs['b'].base_value[0]) < 1e-9      # row 0: the base does not depend on DATA
    # a bare bundle still works: the scored rows are the background (and the output says so)
    p = cli('predict', model, tmp_path/'b.csv', '--out', tmp_path/'bare.csv', '--explain')
    assert p.returncode == 0 and 'a sample of DATA' in p.stdout, p.stdout + p.stderr


@pytest.mark.slow
def test_fit_gives_the_line_the_command_budget_less_the_saving_reserve(data, tmp_path):
    "The line's budget ends at the process's start + --time-budget - save_reserve: start-up is already spent, saving comes after."
    import json
    from assembly_line.cli import save_reserve
    p = cli('fit', data/'penguins.csv', '--target', 'species', '--time-budget', 15, '--jobs', 1, '--include', 'linear',
            '--out', tmp_path/'m')
    assert p.returncode == 0, p.stderr
    run = json.loads((tmp_path/'m'/'run.json').read_text())
    assert 0 < run['fit_seconds_given'] < 15 - save_reserve(15), run   # strictly less: the interpreter's start counted
    assert save_reserve(10) == 3 and save_reserve(100) == 15           # a share of the budget, with a floor


@pytest.mark.slow
def test_deterministic_fit_gets_no_clock_budget(data, tmp_path):
    import json
    p = cli('fit', data/'penguins.csv', '--target', 'species', '--time-budget', 15, '--jobs', 1, '--include', 'linear',
            '--deterministic', '--out', tmp_path/'m')
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path/'m'/'run.json').read_text())['fit_seconds_given'] == 15


def progress_lines(text, command):
    "The progress lines a command printed: `[COMMAND  N s] ...` and the fit's own `[line  N s] ...`."
    return [l for l in text.splitlines() if l.startswith((f'[{command} ', '[line '))]


@pytest.mark.slow
def test_fit_prints_progress_on_stderr_and_nothing_under_quiet(data, tmp_path):
    p = cli('fit', data/'penguins.csv', '--target', 'species', '--time-budget', 8, '--jobs', 1, '--include', 'linear',
            '--out', tmp_path/'m')
    assert p.returncode == 0, p.stderr
    lines = progress_lines(p.stderr, 'fit')
    for step in ('load:', 'clean + schema:', 'train:', 'evaluate:', 'save:'):
        assert any(step in l for l in lines), (step, p.stderr)
    assert all('budget left' in l for l in lines if l.startswith('[line ')), lines
    assert not progress_lines(p.stdout, 'fit'), p.stdout              # stdout keeps only the summary
    q = cli('fit', data/'penguins.csv', '--target', 'species', '--time-budget', 8, '--jobs', 1, '--include', 'linear',
            '--deterministic', '--out', tmp_path/'q', '--quiet')
    assert q.returncode == 0, q.stderr
    assert not progress_lines(q.stderr, 'fit') and 'fitted a' in q.stdout, q.stderr


@pytest.mark.slow
def test_demo_fit_prints_progress_unless_quiet():
    args = ('demo', '--example', 'penguins', '--rows', 150, '--time-budget', 5)
    p = cli(*args)
    assert p.returncode == 0, p.stderr
    lines = progress_lines(p.stderr, 'demo')
    assert any(l.startswith('[demo ') and 'fit:' in l for l in lines) and any('train:' in l for l in lines), p.stderr
    q = cli(*args, '--quiet')
    assert q.returncode == 0 and '## line' in q.stdout, q.stderr
    assert not progress_lines(q.stderr, 'demo'), q.stderr


@pytest.mark.slow
def test_run_echoes_the_line_notebook_stages_unless_quiet(tmp_path):
    params = ('-p', 'example', 'penguins', '-p', 'sample', 150, '-p', 'time_budget', 5, '-p', 'include', 'linear',
              '-p', 'tune', 'False', '-p', 'store_url', f"sqlite:///{tmp_path/'store.sqlite'}")
    p = cli('run', 'line', *params, '--out-dir', tmp_path/'r')
    assert p.returncode == 0, p.stderr
    stages = [l.split('] ')[1].split(':')[0] for l in p.stderr.splitlines() if l.startswith('[run ')]
    assert stages == ['load', 'fit', 'evaluate', 'save', 'register', 'monitor'], p.stderr
    assert any(l.startswith('[line ') and 'train:' in l for l in p.stderr.splitlines()), p.stderr
    # --quiet is the command's, whatever the notebook: the cheap data notebook shows it without a second fit
    q = cli('run', 'data', '-p', 'sample', '60', '-p', 'example', 'penguins', '--out-dir', tmp_path/'q', '--quiet')
    assert q.returncode == 0, q.stderr
    assert not progress_lines(q.stderr, 'run') and 'stages (s)' in q.stdout, q.stderr


@pytest.mark.slow
def test_batch_prints_a_line_per_finished_run(tmp_path):
    (tmp_path/'grid.yaml').write_text('example: [penguins, cars]\nsample: 60\n')
    p = cli('batch', '--grid', tmp_path/'grid.yaml', '--notebook', 'data', '--out-dir', tmp_path/'b')
    assert p.returncode == 0, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.startswith('[batch ')]
    assert len(lines) == 3 and '2 run(s) of 01_data.ipynb' in lines[0], p.stderr
    assert '000_example-penguins: ok' in lines[1] and '(2/2 done)' in lines[2], lines


@pytest.mark.slow
def test_retrain_prints_progress_unless_quiet(penguins_model, tmp_path):
    model_dir, _ = penguins_model
    st = ['--store', f"sqlite:///{tmp_path/'store.sqlite'}"]
    assert cli('register', model_dir, '--name', 'peng', '--alias', 'champion', *st).returncode == 0
    p = cli('retrain', 'peng', *st)
    assert p.returncode == 0, p.stderr
    lines = progress_lines(p.stderr, 'retrain')
    assert len(lines) == 2 and 'evaluating the retrain policy' in lines[0] and 'retrain: not_triggered' in lines[1], p.stderr
    q = cli('retrain', 'peng', *st, '--quiet')
    assert q.returncode == 0 and not progress_lines(q.stderr, 'retrain'), q.stderr
