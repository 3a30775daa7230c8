"""Line notebooks and their runs: parameter cells, papermill runs of every notebook with its defaults, run manifests,
deterministic reruns, batches (process pool and a real Dask LocalCluster) with a failing run."""
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from assembly_line.core import ConfigError
from assembly_line import runs

NOTEBOOKS = sorted(runs.line_notebooks())
STAGES = ['01_data', '02_features', '03_selection', '04_training', '05_evaluation', '06_tuning', '07_ensembles']


def _param_cells(path):
    nb = nbformat.read(str(path), as_version=4)
    return [c for c in nb.cells if 'parameters' in c.metadata.get('tags', [])]


def test_every_stage_and_the_line_have_a_notebook():
    assert set(STAGES) | {'line'} <= set(NOTEBOOKS)
    assert runs.find_notebook() == runs.line_notebooks()['line']
    assert runs.find_notebook('training').name == '04_training.ipynb'
    with pytest.raises(ConfigError, match='no such line notebook') as e:
        runs.find_notebook('nope')
    assert 'line' in e.value.expected


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_parameters_cell_is_typed_commented_and_fully_parsed(name):
    path = runs.line_notebooks()[name]
    cells = _param_cells(path)
    assert len(cells) == 1, 'exactly one cell tagged parameters'
    lines = [l for l in cells[0].source.splitlines() if l.strip() and not l.strip().startswith('#')]
    ps = runs.notebook_parameters(path)
    # papermill silently skips a line it cannot parse (e.g. a second '=' in the comment): every line must count
    assert len(ps) == len(lines), (sorted(ps), lines)
    for k, p in ps.items():
        assert p['type'] in ('str', 'int', 'float', 'bool'), (k, p)
        assert p['help'], f'{k} has no comment'
        assert type(p['default']).__name__ == p['type'], (k, p)
    # stage and whole-line notebooks take any table; the decision example and the tour are worked examples on one data set
    common = {'seed', 'out_dir'} if name in ('decisions', 'tour') else {'example', 'data_path', 'target', 'seed', 'out_dir'}
    assert common <= set(ps)


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_committed_notebooks_hold_no_outputs(name):
    nb = nbformat.read(str(runs.line_notebooks()[name]), as_version=4)
    for c in nb.cells:
        if c.cell_type == 'code': assert not c.outputs and c.execution_count is None


def test_coerce_params_converts_and_refuses():
    got = runs.coerce_params('line', {'time_budget': '30', 'tune': 'false', 'test_size': '0.3', 'seed': 2.0, 'example': 'cars'})
    assert got == {'time_budget': 30, 'tune': False, 'test_size': 0.3, 'seed': 2, 'example': 'cars'}
    with pytest.raises(ConfigError, match="unknown parameter 'budget'") as e:
        runs.coerce_params('line', {'budget': 3})
    assert 'time_budget' in e.value.expected
    for bad in ({'time_budget': '2.5'}, {'tune': 'maybe'}, {'time_budget': True}, {'test_size': 'x'}):
        with pytest.raises(ConfigError, match='must be'):
            runs.coerce_params('line', bad)


def test_param_files_and_grids(tmp_path):
    (tmp_path/'a.yml').write_text('example: titanic\ntime_budget: 10\n')
    (tmp_path/'b.json').write_text('{"example": "cars"}')
    (tmp_path/'notes.txt').write_text('ignored')
    assert runs.params_from_dir(tmp_path) == {'a': {'example': 'titanic', 'time_budget': 10}, 'b': {'example': 'cars'}}
    (tmp_path/'c.yaml').write_text('example: [unclosed\n')
    with pytest.raises(ConfigError, match='YAML'):
        runs.read_params(tmp_path/'c.yaml')
    with pytest.raises(ConfigError, match='no such parameter file'):
        runs.read_params(tmp_path/'missing.yaml')
    (tmp_path/'empty').mkdir()
    with pytest.raises(ConfigError, match='no .yaml'):
        runs.params_from_dir(tmp_path/'empty')
    g = runs.expand_grid({'example': ['penguins', 'cars', 'titanic'], 'seed': [0, 1], 'time_budget': 10})
    assert len(g) == 6 and len(set(g)) == 6
    assert all(p['time_budget'] == 10 for p in g.values())
    assert {(p['example'], p['seed']) for p in g.values()} == {(e, s) for e in ('penguins', 'cars', 'titanic') for s in (0, 1)}
    with pytest.raises(ConfigError):
        runs.expand_grid({'seed': []})


def test_runlog_records_failed_stage(tmp_path):
    log = runs.RunLog(tmp_path)
    with log.stage('ok'): pass
    with pytest.raises(ZeroDivisionError):
        with log.stage('bad'): 1/0
    log.record(x=float('nan'), n=3)
    rec = json.loads((tmp_path/runs.RUN_RECORD).read_text())
    assert [(s['stage'], s['status']) for s in rec['stages']] == [('ok', 'done'), ('bad', 'failed')]
    assert rec['results'] == {'x': None, 'n': 3}


def test_input_table_errors():
    with pytest.raises(ConfigError, match='target column'):
        runs.input_table('penguins', target='nope')
    with pytest.raises(ConfigError, match='unknown example'):
        runs.input_table('no_such_example')


def _check_run(rec, name):
    assert rec.ok, rec.error_line()
    man = json.loads(Path(rec.manifest).read_text())
    assert man['status'] == 'ok' and man['notebook'].endswith(f'{name}.ipynb')
    assert man['params']['out_dir'] == rec.out_dir and man['params']['seed'] == 0
    assert len(man['data_hash']) == 64 and man['versions']['assembly_line']
    assert man['stages'] and all(s['status'] == 'done' for s in man['stages'])
    out = nbformat.read(rec.output, as_version=4)
    assert any('injected-parameters' in c.metadata.get('tags', []) for c in out.cells)
    assert not any(o.get('output_type') == 'error' for c in out.cells for o in c.get('outputs', []))
    return man


@pytest.mark.slow
@pytest.mark.parametrize('name', STAGES)
def test_stage_notebook_runs_with_defaults(name, tmp_path):
    rec = runs.run_notebook(name, {}, tmp_path/name)
    man = _check_run(rec, name)
    if name != '01_data' and name != '02_features':
        assert man['metric'] and man['score'] is not None


@pytest.mark.slow
def test_decision_example_runs_with_defaults(tmp_path):
    "The DriveTrain example: churn model, simulation, and an optimised policy at least as good as every baseline."
    rec = runs.run_notebook('decisions', {'customers': 500}, tmp_path/'decisions')
    man = _check_run(rec, 'decisions')
    rec_json = json.loads((tmp_path/'decisions'/'run_record.json').read_text())['results']
    exp = rec_json['expected']
    assert exp['optimised'] >= max(v for k, v in exp.items() if k != 'optimised') - 1e-6
    assert rec_json['budgeted']['spent'] <= rec_json['budgeted']['budget'] + 1e-6


@pytest.mark.slow
def test_whole_line_defaults_are_deterministic(tmp_path):
    """Same parameters and seed twice: the same leaderboard and the same bundle (model.skops SHA-256).

    The whole-line notebook runs the line in deterministic mode by default (`deterministic: bool = True`), where counts,
    not the clock, decide how many trials run, and run metadata (times, pids) lives in run.json outside the hashed content."""
    a = runs.run_notebook('line', {}, tmp_path/'a')
    b = runs.run_notebook('line', {}, tmp_path/'b')
    ma, mb = _check_run(a, 'line'), _check_run(b, 'line')
    assert ma['elapsed_s'] > 0                          # recorded; how long it takes is measured by benchmarks, not asserted
    assert ma['bundle'] and Path(ma['bundle'], 'manifest.json').exists()
    assert ma['data_hash'] == mb['data_hash']
    la, lb = (pd.DataFrame(m['results']['leaderboard']) for m in (ma, mb))
    assert list(la.model) == list(lb.model)
    pd.testing.assert_frame_equal(la[['model', 'kind', 'cv_mean', 'cv_std', 'holdout']],
                                  lb[['model', 'kind', 'cv_mean', 'cv_std', 'holdout']])
    assert ma['score'] == mb['score']
    assert ma['params']['deterministic'] is True
    assert ma['results']['drift_share'] is not None
    assert ma['bundle_sha256'] == mb['bundle_sha256']


@pytest.mark.slow
def test_batch_reports_a_failing_run_and_finishes_the_others(tmp_path):
    sets = {'penguins': {'example': 'penguins', 'sample': 120}, 'broken': {'example': 'no_such_data'},
            'titanic': {'example': 'titanic', 'sample': 150}}
    res = runs.run_batch(sets, 'data', tmp_path, workers=2, progress=False)
    t = res.table
    assert list(t.name) == ['penguins', 'broken', 'titanic']
    assert list(t.status) == ['ok', 'failed', 'ok']
    assert not res.ok and [r.name for r in res.failed] == ['broken']
    bad = res.failed[0]
    assert bad.error['ename'] == 'ConfigError' and isinstance(bad.error['cell_index'], int)
    assert '01_data.ipynb cell' in bad.error_line() and 'no_such_data' in bad.error_line()
    assert Path(bad.output).exists() and json.loads(Path(bad.manifest).read_text())['status'] == 'failed'
    assert 'broken' in res._repr_markdown_()


def test_batch_checks_every_parameter_set_first(tmp_path):
    with pytest.raises(ConfigError, match="unknown parameter 'exampel'"):
        runs.run_batch([{'example': 'penguins'}, {'exampel': 'x'}], 'data', tmp_path, progress=False)
    assert not any(tmp_path.iterdir()), 'nothing ran'


@pytest.mark.slow
@pytest.mark.dask
def test_batch_on_a_local_dask_cluster(tmp_path, dask_client):
    res = runs.run_batch(runs.expand_grid({'example': ['penguins', 'no_such_data'], 'sample': 100}), 'data', tmp_path,
                         client=dask_client, progress=False)
    assert list(res.table.status) == ['ok', 'failed']
    assert res.runs[0].stages and res.runs[1].error['ename'] == 'ConfigError'
