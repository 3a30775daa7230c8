"Contracts, budgets, bad input and the Dask path of `assembly_line.training`."
import subprocess, sys
import numpy as np, pandas as pd, pytest
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from assembly_line.core import Budget, ConfigError, DataError, TargetError, NotFittedError
from assembly_line.datasets import load_example
from assembly_line.training import CVResult, cross_fit, train_candidates, make_folds, check_xy


def pipe(model, scale=True):
    num = make_pipeline(SimpleImputer(), StandardScaler()) if scale else SimpleImputer()
    cat = make_pipeline(SimpleImputer(strategy='most_frequent'), OneHotEncoder(handle_unknown='ignore'))
    pre = make_column_transformer((num, make_column_selector(dtype_include='number')),
                                  (cat, make_column_selector(dtype_include=object)))
    return make_pipeline(pre, model)


@pytest.fixture(scope='module')
def penguins():
    df = load_example('penguins')
    return df.drop(columns='species'), df['species']


@pytest.fixture(scope='module')
def adult():
    df = load_example('adult', n=2000)
    return df.drop(columns='income'), df['income'].str.strip()


@pytest.fixture(scope='module')
def cars():
    df = load_example('cars').dropna(subset=['Miles_per_Gallon']).reset_index(drop=True)
    df = df.assign(Year=df['Year'].dt.year).drop(columns='Name')
    return df.drop(columns='Miles_per_Gallon'), df['Miles_per_Gallon']


# ---- bad input ------------------------------------------------------------------------------------

def test_bad_inputs(penguins):
    X, y = penguins
    est = pipe(LogisticRegression(max_iter=300))
    with pytest.raises(DataError, match='X is empty'): cross_fit(est, X.iloc[:0], y.iloc[:0], 3, 'multiclass')
    with pytest.raises(DataError, match='X is empty'): cross_fit(est, X[[]], y, 3, 'multiclass')
    with pytest.raises(DataError, match='different numbers of rows') as e: cross_fit(est, X, y.iloc[:-3], 3, 'multiclass')
    assert e.value.value == len(X) - 3 and e.value.column == 'species'
    y_nan = y.copy(); y_nan.iloc[7] = np.nan
    with pytest.raises(TargetError, match='missing') as e: cross_fit(est, X, y_nan, 3, 'multiclass')
    assert e.value.row == 7 and e.value.column == 'species'
    with pytest.raises(ConfigError, match='index outside X') as e:
        cross_fit(est, X, y, [(np.arange(300), np.arange(300, 400))], 'multiclass')
    assert e.value.row == 344
    with pytest.raises(ConfigError, match='index outside X'): make_folds(X, y, [(np.arange(-1, 100), np.arange(100, 200))], 'multiclass')
    with pytest.raises(ConfigError, match='leakage'): make_folds(X, y, [(np.arange(200), np.arange(100, 300))], 'multiclass')
    with pytest.raises(ConfigError, match='validated in two folds'):
        make_folds(X, y, [(np.arange(100, 344), np.arange(100)), (np.arange(50, 344), np.arange(50))], 'multiclass')
    with pytest.raises(ConfigError, match='at least 2 folds'): make_folds(X, y, 1, 'multiclass')
    with pytest.raises(ConfigError, match='integer positions'): make_folds(X, y, [(np.arange(10.), np.arange(10, 20))], 'multiclass')
    with pytest.raises(ConfigError, match='unknown task'): cross_fit(est, X, y, 3, 'ranking')
    with pytest.raises(TargetError, match='binary'): cross_fit(est, X, y, 3, 'binary')
    with pytest.raises(TargetError, match='numeric'): cross_fit(est, X, y, 3, 'regression')
    with pytest.raises(TargetError, match='two classes'): check_xy(X, np.array(['a'] * len(X)), 'multiclass')
    with pytest.raises(ConfigError, match='n_jobs'): cross_fit(est, X, y, 3, 'multiclass', n_jobs=0)
    with pytest.raises(ConfigError, match='budget'): cross_fit(est, X, y, 3, 'multiclass', budget='soon')
    with pytest.raises(ConfigError, match='non-empty'): train_candidates({}, X, y, 3, 'multiclass')
    with pytest.raises(ConfigError, match='dask.distributed.Client'): cross_fit(est, X, y, 3, 'multiclass', client=object())


def test_regression_target_inf(cars):
    X, y = cars
    y = y.copy(); y.iloc[5] = np.inf
    with pytest.raises(TargetError, match='infinite') as e: cross_fit(pipe(Ridge()), X, y, 3, 'regression')
    assert e.value.row == 5


# ---- results ------------------------------------------------------------------------------------

def test_oof_covers_every_row_and_predicts(cars):
    X, y = cars
    r = cross_fit(pipe(Ridge()), X, y, 4, 'regression', seed=0, name='ridge')
    assert isinstance(r, CVResult) and r.ok and r.completed == r.n_folds == 4 and r.error is None
    assert r.oof.shape == (len(X),) and not np.isnan(r.oof).any() and r.classes is None
    # each OOF value comes from the fold model that did not see the row
    for (tr, va), m in zip(r.fold_indices, r.fold_models):
        np.testing.assert_allclose(r.oof[va], m.predict(X.iloc[va]))
        assert not set(tr) & set(va)
    new = X.iloc[:7]
    np.testing.assert_allclose(r.predict_scores(new), np.mean([m.predict(new) for m in r.fold_models], axis=0))
    assert r.fit_time > 0 and r.predict_time > 0 and r.wall_time >= r.fit_time * 0.5
    assert r.params['ridge__alpha'] == 1.0
    md = r._repr_markdown_()
    assert '**ridge**' in md and md.count('| done |') == 4


def test_missing_class_in_training_is_padded(penguins):
    X, y = penguins
    yv = y.to_numpy()
    chin, other = np.flatnonzero(yv == 'Chinstrap'), np.flatnonzero(yv != 'Chinstrap')
    # fold 0 validates every Chinstrap, so its training rows have none; fold 1 is an ordinary fold
    f0 = (other[:200], np.concatenate([chin, other[200:240]]))
    f1 = (np.concatenate([chin, other[:200]]), other[240:])
    r = cross_fit(pipe(LogisticRegression(max_iter=500)), X, y, [f0, f1], 'multiclass')
    assert r.ok and r.oof.shape == (len(X), 3)
    assert list(r.classes) == ['Adelie', 'Chinstrap', 'Gentoo']
    assert list(r.fold_models[0].classes_) == ['Adelie', 'Gentoo']
    np.testing.assert_array_equal(r.oof[f0[1], 1], 0.)
    np.testing.assert_allclose(r.oof[r.oof_mask].sum(1), 1.)
    # rows in no validation fold stay NaN, and the mask says so
    assert np.isnan(r.oof[other[:200]]).all() and r.oof_mask.sum() == len(f0[1]) + len(f1[1])
    p = r.predict_scores(X.iloc[:5])
    assert p.shape == (5, 3)
    np.testing.assert_allclose(p.sum(1), 1.)


def test_seed_reproducible_and_local_parallel_same(penguins):
    X, y = penguins
    rf = pipe(RandomForestClassifier(n_estimators=20), scale=False)
    a = cross_fit(rf, X, y, 3, 'multiclass', seed=3)
    b = cross_fit(rf, X, y, 3, 'multiclass', seed=3, n_jobs=2)     # worker processes
    c = cross_fit(rf, X, y, 3, 'multiclass', seed=4)
    np.testing.assert_array_equal(a.oof, b.oof)
    assert not np.array_equal(a.oof, c.oof)
    assert rf.get_params()['randomforestclassifier__random_state'] is None   # the caller's template is untouched


def test_fit_params_rowwise_are_split(penguins):
    X, y = penguins
    w = np.where(y.to_numpy() == 'Adelie', 5.0, 1.0)
    est = pipe(LogisticRegression(max_iter=500))
    plain = cross_fit(est, X, y, 3, 'multiclass', seed=0)
    weighted = cross_fit(est, X, y, 3, 'multiclass', seed=0, fit_params={'logisticregression__sample_weight': w})
    assert weighted.ok
    assert weighted.oof[:, 0].mean() > plain.oof[:, 0].mean()     # Adelie up-weighted → more Adelie probability


@pytest.mark.filterwarnings('ignore:The argument .eval_set. is deprecated')
def test_early_stopping_pass_through(adult):
    from sklearn.ensemble import HistGradientBoostingClassifier
    X, y = adult
    Xn = X.select_dtypes('number')
    r = cross_fit(HistGradientBoostingClassifier(max_iter=1000, learning_rate=0.3, early_stopping=True, n_iter_no_change=5), Xn, y, 2, 'binary', seed=0)
    assert r.ok and all(m.n_iter_ < 1000 for m in r.fold_models)
    lgb = pytest.importorskip('lightgbm')
    # LightGBM's callback and its eval set (other adult rows) reach every fold's `fit` through fit_params
    hold = load_example('adult', n=500, seed=1)
    fp = {'callbacks': [lgb.early_stopping(5, verbose=False)],
          'eval_set': [(hold[Xn.columns], hold['income'].str.strip())]}  # (eval_X/eval_y in 4.7 do not encode string labels)
    r = cross_fit(lgb.LGBMClassifier(n_estimators=2000, learning_rate=0.3, verbose=-1, n_jobs=1), Xn, y, 2, 'binary', seed=0, fit_params=fp)
    assert r.ok, r.error
    assert all(0 < m.best_iteration_ < 2000 for m in r.fold_models)


def test_failed_model_recorded_others_continue(penguins):
    X, y = penguins
    res = train_candidates({'ok': pipe(LogisticRegression(max_iter=300)), 'broken': LogisticRegression(),
                            'tree': pipe(DecisionTreeClassifier(max_depth=3), scale=False)}, X, y, 3, 'multiclass', seed=0)
    assert list(res) == ['ok', 'broken', 'tree']
    assert res['ok'].ok and res['tree'].ok
    b = res['broken']
    assert b.completed == 0 and b.fold_status == ['failed'] * 3 and b.error.startswith('fold 0: ValueError')
    assert np.isnan(b.oof).all()
    with pytest.raises(NotFittedError): b.predict_scores(X)
    for (_, v1), (_, v2) in zip(res['ok'].fold_indices, res['tree'].fold_indices): np.testing.assert_array_equal(v1, v2)


# ---- budgets ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_tiny_budget_stops_a_running_fit(adult):
    X, y = adult
    big = pipe(RandomForestClassifier(n_estimators=4000), scale=False)
    r = cross_fit(big, X, y, 5, 'binary', budget=1.5, seed=0)
    assert r.completed < r.n_folds and r.n_folds == 5
    # one worker: the fit running at the deadline was stopped, not waited for, and none started after it
    assert 'stopped' in r.fold_status, r.fold_status
    k = r.fold_status.index('stopped')
    assert r.fold_status == ['done'] * k + ['stopped'] + ['skipped'] * (4 - k), r.fold_status
    assert '1 running fit(s) stopped' in r.stopped and f"{4 - k} fold(s) not started" in r.stopped, r.stopped
    assert r.fold_status.count('done') == r.completed and 'skipped' in r.fold_status
    assert 'budget spent' in r.stopped and r.error is None
    assert np.isnan(r.oof[~r.oof_mask]).all() and r.oof_mask.sum() == sum(len(v) for (_, v), s in zip(r.fold_indices, r.fold_status) if s == 'done')


def test_spent_budget_skips_everything(penguins):
    X, y = penguins
    r = cross_fit(pipe(LogisticRegression()), X, y, 3, 'multiclass', budget=Budget(0))
    assert r.completed == 0 and r.fold_status == ['skipped'] * 3 and '3 fold(s) not started' in r.stopped
    assert r.fold_models == [None] * 3 and np.isnan(r.fold_fit_times).all() and np.isnan(r.oof).all()  # nothing ran
    res = train_candidates({'a': pipe(LogisticRegression()), 'b': pipe(LogisticRegression())}, X, y, 3, 'multiclass', budget=0)
    assert all(r.completed == 0 and r.stopped for r in res.values())


@pytest.mark.slow
def test_stage_budget_shared(adult):
    X, y = adult
    cands = {'big': pipe(RandomForestClassifier(n_estimators=4000), scale=False),
             'tree': pipe(DecisionTreeClassifier(max_depth=4), scale=False)}
    res = train_candidates(cands, X, y, 3, 'binary', budget=25, per_model_budget=2, seed=0)
    big = res['big']           # its own 2 s, not the stage's 25: stopped while fitting, the rest never started
    assert big.completed < 3 and 'budget spent' in big.stopped and big.fold_status.count('stopped') == 1, big.fold_status
    assert big.fold_status[big.fold_status.index('stopped') + 1:] == ['skipped'] * (2 - big.fold_status.index('stopped'))
    assert res['tree'].ok, res['tree'].fold_status


def test_import_without_dask(penguins):
    code = ("import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
            "from assembly_line.training import cross_fit\n"
            "from assembly_line.datasets import load_example\n"
            "from sklearn.tree import DecisionTreeClassifier\n"
            "df = load_example('penguins').dropna()\n"
            "r = cross_fit(DecisionTreeClassifier(random_state=0), df[['bill_length_mm','flipper_length_mm']], df['species'], 3, 'multiclass')\n"
            "assert r.ok\n"
            "try: cross_fit(DecisionTreeClassifier(), df[['bill_length_mm']], df['species'], 3, 'multiclass', client=1)\n"
            "except Exception as e: print(type(e).__name__)\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'ConfigError'


# ---- Dask -----------------------------------------------------------------------------------------

@pytest.mark.dask
def test_dask_same_oof_as_local(dask_client, penguins):
    X, y = penguins
    cands = {'rf': pipe(RandomForestClassifier(n_estimators=20), scale=False), 'logistic': pipe(LogisticRegression(max_iter=300))}
    local = train_candidates(cands, X, y, 3, 'multiclass', seed=5)
    remote = train_candidates(cands, X, y, 3, 'multiclass', seed=5, client=dask_client)
    for n in cands:
        assert remote[n].ok
        np.testing.assert_array_equal(remote[n].oof, local[n].oof)
        np.testing.assert_allclose(remote[n].predict_scores(X.iloc[:5]), local[n].predict_scores(X.iloc[:5]))


@pytest.mark.dask
@pytest.mark.slow
def test_dask_budget_stops(dask_client, adult):
    X, y = adult
    cands = {'big': pipe(RandomForestClassifier(n_estimators=4000), scale=False),
             'tree': pipe(DecisionTreeClassifier(max_depth=4), scale=False)}
    res = train_candidates(cands, X, y, 4, 'binary', per_model_budget=2, client=dask_client, seed=0)
    r = res['big']
    assert r.completed < 4 and 'stopped' in r.fold_status and 'budget spent' in r.stopped
    # two workers: at most two fits ran at the deadline (stopped); every fold after them was never started
    n_stopped = r.fold_status.count('stopped')
    assert 1 <= n_stopped <= 2 and f"{n_stopped} running fit(s) stopped" in r.stopped, (r.fold_status, r.stopped)
    assert r.fold_status.count('skipped') == 0 or f"{r.fold_status.count('skipped')} fold(s) not started" in r.stopped
    assert res['tree'].ok, (res['tree'].fold_status, res['tree'].stopped, res['big'].stopped)  # the restarted cluster still serves the next model
    dask_client.wait_for_workers(2, timeout=30)
    assert dask_client.submit(sum, [1, 2]).result() == 3
