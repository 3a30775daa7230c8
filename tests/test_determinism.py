"""Deterministic mode gives reproducible bundles: byte-identical listed files, one bundle hash, one registry hash.

What varies between two identical fits — times, pids, host, CatBoost's random model id, cached `id()` values, TPE
trials racing each other — must either be normalised or live in `run.json`, outside the hash. These tests fit twice
(in this process, through the CLI and through the papermill line notebook) with a CatBoost member and two workers."""
import json, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from assembly_line.core import ConfigError, IntegrityError, file_hash
from assembly_line.datasets import load_example, EXAMPLES
from assembly_line.schema import infer_schema
from assembly_line.selection import zoo
from assembly_line.spaces import search_space
from assembly_line.tuning import tune
from assembly_line.line import AssemblyLine
from assembly_line.bundle import (RUN_FILE, verify_bundle, make_reproducible, write_manifest, bundle_sha, check_bundle,
                                  add_files)
from assembly_line.deploy import Registry

catboost = pytest.importorskip('catboost')


def _files(folder:Path)->dict:
    "Every file of a bundle folder, by relative name, as bytes."
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}

def _differing(a:Path, b:Path)->set:
    fa, fb = _files(a), _files(b)
    assert set(fa) == set(fb), set(fa) ^ set(fb)
    return {n for n in fa if fa[n] != fb[n]}

def _members(line)->list: return list(line.model_.names or [])


# --- the pieces: TPE side by side, CatBoost metadata ---------------------------------------------------------------

@pytest.mark.slow
def test_parallel_tpe_in_deterministic_mode_is_the_sequential_search():
    "Two workers, pruning decided in trial and fold order: the trials, states and scores of `n_jobs=1`, every time."
    df = load_example('titanic'); t = EXAMPLES['titanic'].target
    sch = infer_schema(df, target=t)
    pipe = zoo(sch.task, include=['linear'])['linear'].make(sch)
    kw = dict(folds=5, n_trials=16, seed=0, refit=False)
    space = search_space('linear', task=sch.task)
    seq = tune(pipe, space, df[sch.features], df[t], sch.task, n_jobs=1, **kw).trials
    assert 'pruned' in set(seq.state), seq.state.value_counts()   # the case where racing trials used to differ
    cols = ['trial', 'state', 'score', 'fold_scores', 'params']
    for _ in range(2):
        par = tune(pipe, space, df[sch.features], df[t], sch.task, n_jobs=2, deterministic=True, **kw).trials
        assert par[cols].astype(str).values.tolist() == seq[cols].astype(str).values.tolist()
        assert len({w for ws in par.worker for w in ws}) >= 2   # really on two workers

def test_deterministic_search_refuses_a_wall_clock_budget():
    df = load_example('penguins'); t = EXAMPLES['penguins'].target
    sch = infer_schema(df, target=t)
    pipe = zoo(sch.task, include=['linear'])['linear'].make(sch)
    with pytest.raises(ConfigError, match='wall-clock budget'):
        tune(pipe, search_space('linear', task=sch.task), df[sch.features], df[t], sch.task, budget=5, deterministic=True)

def test_catboost_metadata_is_normalised_and_predictions_kept():
    "CatBoost's random model_guid and its finish time go; the id becomes a hash of the model, so equal fits serialise equally."
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X = np.random.default_rng(0).normal(size=(150, 4)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
    fit = lambda seed=0: make_pipeline(StandardScaler(), catboost.CatBoostClassifier(
        iterations=20, verbose=0, random_seed=seed, allow_writing_files=False, thread_count=1)).fit(X, y)
    a, b, other = fit(), fit(), fit(seed=1)
    ma, mb = a[-1], b[-1]
    assert ma.get_metadata()['model_guid'] != mb.get_metadata()['model_guid']   # random as fitted
    assert ma._serialize_model() != mb._serialize_model()
    before = a.predict_proba(X)
    for p in (a, b, other): make_reproducible(p)
    assert ma._serialize_model() == mb._serialize_model()
    meta = dict(ma.get_metadata().items())
    assert 'train_finish_time' not in meta and len(meta['model_guid']) == 35
    assert meta['model_guid'] != other[-1].get_metadata()['model_guid']            # another model, another id
    np.testing.assert_array_equal(a.predict_proba(X), before)
    make_reproducible(a)                                                          # idempotent
    assert ma._serialize_model() == mb._serialize_model()


# --- two deterministic fits in this process -------------------------------------------------------------------------

KW = dict(time_budget=10, seed=0, deterministic=True, n_jobs=2, tune=False, include=['catboost', 'linear'])

@pytest.fixture(scope='module')
def twin_lines():
    df = load_example('titanic', n=400, seed=0)
    a = AssemblyLine('survived', **KW).fit(df)
    b = AssemblyLine('survived', **KW).fit(df)
    assert 'catboost' in _members(a), a.model_     # the test means something only with a CatBoost member
    return a, b, df

@pytest.mark.slow
def test_two_deterministic_fits_save_byte_identical_bundles(twin_lines, tmp_path):
    a, b, df = twin_lines
    pa, pb = a.save(tmp_path/'a'), b.save(tmp_path/'b')
    assert _differing(pa, pb) == {RUN_FILE}
    assert bundle_sha(pa) == bundle_sha(pb)
    man = check_bundle(pa)
    assert RUN_FILE not in man['files'] and 'created' not in man and man['run_file'] == RUN_FILE
    run = json.loads((pa/RUN_FILE).read_text())
    assert {'created', 'host', 'pid', 'fit_seconds', 'stages', 'columns'} <= set(run)
    for name in ('leaderboard.csv', 'summary.json'):                  # no timing left in the hashed files
        text = (pa/name).read_text()
        assert 'fit_time' not in text and 'predict_ms' not in text and 'fit_seconds' not in text and '"used"' not in text
    # a later save of the same fitted line (other time, same process) gives the same hash too
    assert bundle_sha(a.save(tmp_path/'a2')) == bundle_sha(pa)

@pytest.mark.slow
def test_load_restores_run_times_and_predictions(twin_lines, tmp_path):
    a, _, df = twin_lines
    p = a.save(tmp_path/'a')
    back = AssemblyLine.load(p)
    pd.testing.assert_frame_equal(back.predict_proba(df.head(20)), a.predict_proba(df.head(20)))
    cols = ['model', 'cv_mean', 'fit_time_s', 'predict_ms_per_1k']
    pd.testing.assert_frame_equal(pd.DataFrame(back.leaderboard)[cols], pd.DataFrame(a.leaderboard)[cols], check_exact=False)
    assert back.fit_time_ == pytest.approx(a.fit_time_, abs=1e-3)
    assert [(s.stage, s.note) for s in back.stage_times_] == [(s.stage, s.note) for s in a.stage_times_]
    assert [s.used for s in back.stage_times_] == pytest.approx([s.used for s in a.stage_times_], abs=1e-3)
    # without run.json the model still loads (the times are unknown); a run.json that is not a JSON object is refused
    (p/RUN_FILE).unlink()
    gone = AssemblyLine.load(p)
    assert np.isnan(gone.fit_time_) and gone.leaderboard['fit_time_s'].isna().all()
    (p/RUN_FILE).write_text('[1, 2]')
    with pytest.raises(IntegrityError, match='run.json'): AssemblyLine.load(p)
    (p/RUN_FILE).write_text('{}')
    with pytest.raises(ConfigError, match='core bundle file'): add_files(p, {RUN_FILE: '{}'})

@pytest.mark.slow
def test_format_1_bundles_still_load(twin_lines, tmp_path):
    "A bundle written before run.json existed (times inside summary.json and leaderboard.csv, `created` in the manifest)."
    a, _, df = twin_lines
    p = a.save(tmp_path/'old')
    run = json.loads((p/RUN_FILE).read_text()); (p/RUN_FILE).unlink()
    lb = pd.read_csv(p/'leaderboard.csv')
    for c, v in run['columns']['leaderboard.csv'].items(): lb[c] = v
    lb.to_csv(p/'leaderboard.csv', index=False)
    (p/'summary.json').write_text(json.dumps(a.summary()))
    man = json.loads((p/'manifest.json').read_text())
    write_manifest(p, {k: v for k, v in man.items() if k not in ('format', 'files', 'run_file')} | dict(created='2025-01-01T00:00:00Z'))
    m = json.loads((p/'manifest.json').read_text()); m['format'] = 1; (p/'manifest.json').write_text(json.dumps(m))
    old = AssemblyLine.load(p)
    assert old.fit_time_ == a.summary()['fit_seconds'] and old.leaderboard['fit_time_s'].notna().all()
    pd.testing.assert_frame_equal(old.predict_proba(df.head(5)), a.predict_proba(df.head(5)))
    (p/RUN_FILE).write_text('{}')                                   # format 1 knows no run.json: an unlisted file
    with pytest.raises(IntegrityError, match='does not list'): verify_bundle(p)

@pytest.mark.slow
def test_registering_twin_fits_gives_equal_registry_hashes(twin_lines, tmp_path):
    "Each fit registered (with its model card, evaluation rows and an extra file) in its own registry: the same hash."
    a, b, df = twin_lines
    mvs = []
    for name, line in (('a', a), ('b', b)):
        (tmp_path/name).mkdir()
        reg = Registry(f"sqlite:///{tmp_path/name/'store.sqlite'}", root=tmp_path/name/'artifacts')
        mvs.append(reg.register(line, 'titanic', alias='champion', data=df.tail(80), extra_files={'notes.txt': 'seeded'}))
        assert reg.load('titanic').best_ == line.best_
    assert mvs[0].sha256 == mvs[1].sha256 == bundle_sha(mvs[0].uri)
    assert _differing(Path(mvs[0].uri), Path(mvs[1].uri)) == {RUN_FILE}
    card = (Path(mvs[0].uri)/'model_card.md').read_text()
    assert 'run.json' in card and 'fit time' not in card


# --- the same through the command line and the papermill line notebook ------------------------------------------------

EXE = shutil.which('assembly-line') or str(Path(sys.executable).parent/'assembly-line')

def _cli(*args, cwd):
    "The installed console script in its own process (its own hash seed, pids, clock)."
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)

@pytest.mark.slow
def test_cli_deterministic_fits_give_one_bundle_hash(tmp_path):
    "`assembly-line fit --deterministic` twice, each in its own process, with tuning (TPE) on two workers."
    data = tmp_path/'titanic.csv'
    load_example('titanic', n=400, seed=0).to_csv(data, index=False)
    outs = []
    for r in 'ab':
        p = _cli('fit', data, '--target', 'survived', '--time-budget', 10, '--jobs', 2, '--include', 'linear,catboost',
                 '--deterministic', '--out', tmp_path/r, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        outs.append(tmp_path/r)
    a, b = outs
    assert _differing(a, b) == {RUN_FILE}
    assert bundle_sha(a) == bundle_sha(b)
    line = AssemblyLine.load(a)
    assert 'catboost' in ' '.join(_members(line)) and (a/'tuning_trials.csv').exists()
    shas = []
    for r, folder in zip('ab', outs):
        (tmp_path/('reg_' + r)).mkdir()
        reg = Registry(f"sqlite:///{tmp_path/('reg_' + r)/'store.sqlite'}", root=tmp_path/('reg_' + r)/'artifacts')
        shas.append(reg.register(folder, 'titanic').sha256)
    assert shas[0] == shas[1]

@pytest.mark.slow
def test_line_notebook_deterministic_runs_give_one_bundle_and_registry_hash(tmp_path):
    "The papermill line notebook twice (bundle, monitor reference, model card, registry): same bytes, same hashes."
    from assembly_line.runs import run_notebook
    recs = []
    for r in 'ab':
        params = dict(example='titanic', sample=400, include='linear,catboost', tune=False, n_jobs=2, deterministic=True,
                      time_budget=10, model_name='titanic', store_url=f"sqlite:///{tmp_path/('reg_' + r)/'store.sqlite'}")
        (tmp_path/('reg_' + r)).mkdir()
        rec = run_notebook('line', params, tmp_path/r)
        assert rec.ok, rec.error_line()
        recs.append(rec)
    a, b = (Path(rec.results['bundle']) for rec in recs)
    assert _differing(a, b) == {RUN_FILE}
    assert bundle_sha(a) == bundle_sha(b)
    assert 'catboost' in _members(AssemblyLine.load(a))
    mvs = [Registry(f"sqlite:///{tmp_path/('reg_' + r)/'store.sqlite'}").get('titanic') for r in 'ab']
    assert mvs[0].sha256 == mvs[1].sha256
    assert _differing(Path(mvs[0].uri), Path(mvs[1].uri)) == {RUN_FILE}
