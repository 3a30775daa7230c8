"""Contracts of `assembly_line.tuning`: the budget holds for every method, trials are recorded with their states,
seeds name the trials, bad input fails early, the zoo's spaces fit the zoo's pipelines, and a Dask cluster runs the trials."""
from __future__ import annotations
import numpy as np, pandas as pd, pytest
from threadpoolctl import threadpool_limits
from sklearn.pipeline import Pipeline
from sklearn.compose import make_column_transformer, make_column_selector
from sklearn.preprocessing import OneHotEncoder
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import Ridge
from assembly_line.core import ConfigError, BudgetError, Budget, TaskKind
from assembly_line.datasets import load_example
from assembly_line.spaces import (IntRange, FloatRange, Choice, SPACES, search_space, check_space, to_grid,
                                  to_distributions, suggest)
from assembly_line.tuning import tune, TuningResult, METHODS


@pytest.fixture(autouse=True)
def one_thread():
    with threadpool_limits(1): yield  # OpenMP spin-waiting on a shared 2-core machine slows boosting 100x


def _onehot():
    return make_column_transformer(
        (OneHotEncoder(handle_unknown='infrequent_if_exist', min_frequency=20, sparse_output=False),
         make_column_selector(dtype_include=object)),
        ('passthrough', make_column_selector(dtype_include='number')))


@pytest.fixture(scope='module')
def adult():
    df = load_example('adult', n=900, seed=1)
    return df.drop(columns='income'), df['income']


@pytest.fixture
def hgb():
    return Pipeline([('preprocess', _onehot()),
                     ('model', HistGradientBoostingClassifier(random_state=0, early_stopping=False, max_iter=20))])


HSPACE = {'model__learning_rate': FloatRange(0.02, 0.3, log=True), 'model__max_leaf_nodes': IntRange(4, 32, log=True),
          'model__max_iter': IntRange(10, 40)}


def _fits_within(res, seconds):
    """The search started no fit after its deadline, in the figures it recorded.

    With `n_jobs=1` the fits run one after another, each starting after the call began and, if the deadline holds, before
    it: so every complete trial's fits but the last one ended inside the budget. A busy machine makes fits slower and
    fewer, never more; a search that kept starting fits after the deadline sums past it."""
    ok = res.trials[res.trials.state == 'complete']
    assert len(ok) >= 1
    ran = ok.fit_time.sum() - ok.fit_time.max()
    assert ran < seconds, f"{res.method}: {len(ok)} complete trials fitted for {ran:.2f} s before their last, budget {seconds:.2f} s"


@pytest.mark.parametrize('method', METHODS)
def test_budget_is_honoured(method, adult, hgb):
    "Every method stops starting fits at its deadline, with at least one complete trial and the rest recorded."
    X, y = adult
    budget = 2.5
    res = tune(hgb, dict(HSPACE), X, y, 'binary', folds=3, method=method, budget=budget, seed=0,
               n_trials=81 if method == 'halving' else None, grid_size=6)
    assert isinstance(res, TuningResult) and res.method == method and 0 < res.budget <= budget   # what was left at the start
    assert res.n_complete >= 1 and res.best_estimator is not None
    _fits_within(res, res.budget)
    assert set(res.trials.state) <= {'complete', 'pruned', 'failed', 'timeout'}
    ok = res.trials[res.trials.state == 'complete']
    assert ok.score.notna().all() and all(len(f) == 3 for f in res.trials.fold_scores)
    # the search did not run every candidate: the budget, not the candidate list, ended it
    if method == 'grid': assert len(res.trials) < 6**3 or (res.trials.state == 'timeout').any()
    if method == 'halving': assert (res.trials.state == 'timeout').any() or res.trials['iter'].max() < 4


def test_budget_object_and_refit_false(adult, hgb):
    X, y = adult
    res = tune(hgb, HSPACE, X, y, 'binary', folds=3, method='random', budget=Budget(1.5), refit=False)
    assert res.best_estimator is None and 0 < res.budget <= 1.5
    _fits_within(res, res.budget)          # without a refit the whole budget goes to the trials, and no more


def test_trial_table_and_repr(adult, hgb):
    X, y = adult
    res = tune(hgb, HSPACE, X, y, 'binary', folds=3, method='random', n_trials=4, seed=3)
    t = res.trials
    assert list(t.columns[:6]) == ['trial', 'state', 'score', 'fold_scores', 'fit_time', 'params']
    assert t.trial.tolist() == [0, 1, 2, 3] and (t.fit_time > 0).all()
    for _, r in t.iterrows():
        assert r.score == pytest.approx(np.mean(r.fold_scores))
        assert {k: r[f'param_{k}'] for k in HSPACE} == r.params
    assert res.best_score == t.score.max() and res.best_params == t.loc[t.score.idxmax(), 'params']
    md = res._repr_markdown_()
    assert 'random search' in md and 'roc_auc' in md and '4 complete' in md
    ax = res.plot()
    assert ax.get_ylabel() == 'roc_auc'


@pytest.mark.parametrize('method', ['random', 'tpe'])
def test_seed_names_the_trials(method, adult, hgb):
    X, y = adult
    a = tune(hgb, HSPACE, X, y, 'binary', folds=3, method=method, n_trials=7, seed=5, refit=False)
    b = tune(hgb, HSPACE, X, y, 'binary', folds=3, method=method, n_trials=7, seed=5, refit=False)
    c = tune(hgb, HSPACE, X, y, 'binary', folds=3, method=method, n_trials=7, seed=6, refit=False)
    assert a.trials.params.tolist() == b.trials.params.tolist()
    assert np.allclose(a.trials.score, b.trials.score, equal_nan=True)
    assert a.trials.params.tolist() != c.trials.params.tolist()


@pytest.mark.parametrize('method', ['grid', 'tpe'])
def test_failed_trials_are_recorded(method, adult):
    "A candidate whose fit raises is kept in the table as 'failed'; the search goes on."
    X, y = adult
    rf = Pipeline([('preprocess', _onehot()), ('model', RandomForestClassifier(n_estimators=10, random_state=0))])
    space = {'model__max_features': Choice(['sqrt', 'not-a-setting']), 'model__max_depth': Choice([3, 6])}
    res = tune(rf, space, X, y, 'binary', folds=3, method=method, n_trials=8, seed=0, refit=False)
    bad = res.trials[res.trials['param_model__max_features'] == 'not-a-setting']
    assert len(bad) and (bad.state == 'failed').all() and bad.score.isna().all()
    assert (res.trials.state == 'complete').any() and res.best_params['model__max_features'] == 'sqrt'
    if method == 'tpe': assert bad.error.str.contains('max_features').all()


def test_tpe_prunes_and_runs_local_processes(adult, hgb):
    X, y = adult
    res = tune(hgb, HSPACE, X, y, 'binary', folds=4, method='tpe', n_trials=10, n_jobs=2, seed=0, refit=False)
    assert len(res.trials) == 10 and set(res.trials.state) <= {'complete', 'pruned'}
    workers = {w for ws in res.trials.worker for w in ws}
    assert workers and all(w.startswith('pid:') for w in workers)


def test_regression_and_metric_direction():
    df = load_example('diamonds', n=500, seed=0)
    X, y = df.drop(columns='price'), df['price']
    ridge = Pipeline([('preprocess', _onehot()), ('model', Ridge())])
    res = tune(ridge, search_space('linear', 'regression'), X, y, 'regression', method='grid', grid_size=4, metric='mae')
    assert res.metric.name == 'mae' and res.best_score == res.trials.score.min()
    assert len(res.trials) == 4 and res.best_estimator.predict(X.head(2)).shape == (2,)


def test_spaces_convert_every_way():
    import optuna
    rng = np.random.RandomState(0)
    for name in SPACES:
        for task in ('binary', 'regression'):
            sp = search_space(name, task)
            grid = to_grid(sp, 2)
            assert all(1 <= len(v) <= max(2, len(getattr(sp[k], 'values', ()))) for k, v in grid.items())
            for k, d in to_distributions(sp).items():
                v = d[rng.randint(len(d))] if isinstance(d, list) else d.rvs(random_state=rng)
                assert v is not None
            study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
            params = suggest(study.ask(), sp)
            for k, v in params.items():
                r = sp[k]
                if isinstance(r, Choice): assert v in r.values
                else: assert r.lo <= v <= r.hi


def test_zoo_spaces_fit_zoo_pipelines():
    "Every default space names real parameters of the zoo's pipeline for that model, for each task."
    selection = pytest.importorskip('assembly_line.selection')
    from assembly_line.schema import infer_schema
    for data, task in (('adult', 'binary'), ('penguins', 'multiclass'), ('diamonds', 'regression')):
        from assembly_line.datasets import EXAMPLES
        df = load_example(data, n=200, seed=0)
        schema = infer_schema(df, target=EXAMPLES[data].target)
        for name, cand in selection.zoo(task).items():
            pipe = cand.make(schema)
            check_space(search_space(name, task, estimator=pipe), pipe)


def test_bad_input(adult, hgb):
    X, y = adult
    with pytest.raises(ConfigError) as e: tune(hgb, {'model__max_dept': IntRange(2, 6)}, X, y, 'binary')
    assert e.value.column == 'model__max_dept' and 'model__max_depth' in e.value.expected
    with pytest.raises(ConfigError, match='empty'): tune(hgb, {}, X, y, 'binary')
    with pytest.raises(BudgetError): tune(hgb, HSPACE, X, y, 'binary', budget=0)
    with pytest.raises(ConfigError): tune(hgb, HSPACE, X, y, 'binary', budget=-1)
    with pytest.raises(ConfigError, match='n_trials'): tune(hgb, HSPACE, X, y, 'binary', n_trials=0)
    with pytest.raises(ConfigError, match='different numbers of rows'): tune(hgb, HSPACE, X, y[:-1], 'binary')
    with pytest.raises(ConfigError, match='at least 2 folds'): tune(hgb, HSPACE, X, y, 'binary', folds=1)
    with pytest.raises(ConfigError, match='no valid range'): tune(hgb, {'model__max_iter': 5}, X, y, 'binary')
    with pytest.raises(ConfigError, match='unknown tuning method'): tune(hgb, HSPACE, X, y, 'binary', method='anneal')
    with pytest.raises(ConfigError): search_space('svm')


@pytest.fixture(scope='module')
def client(dask_client):
    return dask_client     # conftest's cluster: one thread per worker, OpenMP included


@pytest.mark.dask
@pytest.mark.slow
def test_tpe_trials_run_on_dask(client, adult, hgb):
    X, y = adult
    res = tune(hgb, HSPACE, X, y, 'binary', folds=3, method='tpe', n_trials=6, client=client, seed=0)
    addresses = set(client.scheduler_info()['workers'])
    used = {w for ws in res.trials.worker for w in ws}
    assert used and used <= addresses
    assert res.n_complete >= 1 and res.best_estimator is not None


@pytest.mark.dask
@pytest.mark.slow
@pytest.mark.parametrize('method', ['random', 'halving'])
def test_sklearn_searches_run_on_dask(method, client, adult, hgb):
    from distributed import get_task_stream
    X, y = adult
    with get_task_stream(client) as ts:
        res = tune(hgb, HSPACE, X, y, 'binary', folds=3, method=method, n_trials=6 if method == 'random' else 9,
                   client=client, seed=0, refit=False)
    assert len(ts.data) >= 6 * 3 and {d['worker'] for d in ts.data} <= set(client.scheduler_info()['workers'])
    assert res.n_complete >= 1
