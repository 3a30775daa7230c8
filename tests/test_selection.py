"Contracts of `assembly_line.selection`: the fastai estimators under scikit-learn's checks, state and saving, the zoo, screening."
import pickle, re
import numpy as np, pandas as pd, pytest
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.utils.validation import check_is_fitted
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks
from assembly_line.core import ConfigError, DataError, SchemaError, TargetError
from assembly_line.datasets import load_example
from assembly_line.schema import infer_schema
from assembly_line.selection import TabularNNClassifier, TabularNNRegressor, LabelEncoded, zoo, Candidate
from assembly_line.screening import screen

FAST = dict(max_epochs=4, layers=(16,), patience=2)

# Checks that assume what a DataFrame/embedding network does not promise, each with its reason.
_WHY = {
    'check_n_features_in_after_fitting': "a missing column raises assembly_line's SchemaError (not a ValueError), naming the column",
    'check_dataframe_column_names_consistency': "columns are matched by name; extra columns are ignored, missing ones raise SchemaError",
    'check_estimators_empty_data': "an empty table raises assembly_line's DataError, which is not a ValueError",
    'check_estimators_empty_data_messages': "an empty table raises assembly_line's DataError, which is not a ValueError",
    'check_supervised_y_no_nan': "a missing target raises assembly_line's TargetError naming the row (not a ValueError)",
    'check_fit2d_1sample': "an empty table raises assembly_line's DataError, which is not a ValueError",
    'check_classifiers_one_label': "one class raises assembly_line's TargetError with the labels found",
    'check_classifiers_train': "a 4-epoch network on tiny synthetic blobs need not reach sklearn's 0.83 accuracy floor",
    'check_regressors_train': "a 4-epoch network on tiny synthetic data need not reach sklearn's R² floor",
    'check_supervised_y_2d': "a column-vector y is flattened silently (no DataConversionWarning)",
    'check_requires_y_none': "y=None raises assembly_line's DataError",
    'check_classifiers_regression_target': "a float target is accepted as class labels",
    'check_regressor_multioutput': "single-output regression only",
    'check_sample_weight_equivalence_on_dense_data': "sample weights are not supported",
}

def _expected(est): return _WHY

@parametrize_with_checks([TabularNNClassifier(**FAST), TabularNNRegressor(**FAST)], expected_failed_checks=_expected)
def test_sklearn_contract(estimator, check): check(estimator)

@pytest.fixture(scope='module')
def adult():
    df = load_example('adult', n=1500, seed=1)
    return df.drop(columns='income'), df['income']

@pytest.fixture(scope='module')
def fitted(adult):
    X, y = adult
    return TabularNNClassifier(**FAST).fit(X.iloc[:1000], y.iloc[:1000])

def test_get_params_and_clone(fitted):
    p = fitted.get_params()
    assert p['max_epochs'] == 4 and p['layers'] == (16,)
    c = clone(fitted)
    assert c.get_params() == p and not hasattr(c, 'model_state_')
    c.set_params(lr=3e-3, seed=5)
    assert c.lr == 3e-3 and fitted.lr == 1e-2

def test_reproducible_and_seed_matters(adult, fitted):
    X, y = adult
    again = TabularNNClassifier(**FAST).fit(X.iloc[:1000], y.iloc[:1000])
    np.testing.assert_array_equal(again.predict_proba(X.iloc[1000:]), fitted.predict_proba(X.iloc[1000:]))
    other = TabularNNClassifier(**dict(FAST, seed=3)).fit(X.iloc[:1000], y.iloc[:1000])
    assert np.abs(other.predict_proba(X.iloc[1000:]) - fitted.predict_proba(X.iloc[1000:])).max() > 1e-5

def test_global_random_state_untouched(adult):
    X, y = adult
    np.random.seed(123); expected = np.random.rand()
    np.random.seed(123); TabularNNClassifier(**FAST).fit(X.iloc[:300], y.iloc[:300]); got = np.random.rand()
    assert got == expected

def _plain(v):
    if isinstance(v, dict): return all(isinstance(k, str) and _plain(x) for k,x in v.items())
    if isinstance(v, (list, tuple)): return all(_plain(x) for x in v)
    return v is None or isinstance(v, (str, int, float, bool, np.ndarray))

def test_state_is_plain_and_pickle_round_trip(adult, fitted):
    X, _ = adult
    st = fitted.__getstate__()
    assert _plain(st), {k: type(v) for k,v in st.items()}
    assert not any(type(v).__module__.startswith(('torch', 'fastai')) for v in st.values())
    back = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(back.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(back.classes_, fitted.classes_)

def test_skops_round_trip(adult, fitted):
    sio = pytest.importorskip('skops.io')
    X, _ = adult
    blob = sio.dumps(fitted)
    untrusted = sio.get_untrusted_types(data=blob)
    assert all(t.startswith('assembly_line.selection.') for t in untrusted), untrusted
    back = sio.loads(blob, trusted=untrusted)
    np.testing.assert_array_equal(back.predict_proba(X), fitted.predict_proba(X))

def test_weights_only_torch_load(fitted, tmp_path):
    import torch
    sd = {k: torch.from_numpy(np.array(v)) for k,v in fitted.__getstate__()['model_state_'].items()}
    torch.save(sd, tmp_path/'w.pt')
    loaded = torch.load(tmp_path/'w.pt', weights_only=True)
    assert set(loaded) == set(sd)

def test_unseen_nan_inf_and_bad_columns(adult, fitted):
    X, _ = adult
    new = X.iloc[1000:1004].copy()
    new.iloc[0, new.columns.get_loc('workclass')] = 'Astronaut'
    new.iloc[1, new.columns.get_loc('education')] = np.nan
    new.iloc[2, new.columns.get_loc('age')] = np.nan
    new.iloc[3, new.columns.get_loc('capital-gain')] = np.inf
    p = fitted.predict_proba(new)
    assert p.shape == (4, 2) and np.isfinite(p).all()
    # extra columns are ignored, column order does not matter
    shuffled = X.iloc[1000:].assign(extra=1)[list(reversed(X.columns)) + ['extra']]
    np.testing.assert_array_equal(fitted.predict_proba(shuffled), fitted.predict_proba(X.iloc[1000:]))
    with pytest.raises(SchemaError, match='missing') as e: fitted.predict(X.drop(columns=['age']))
    assert e.value.column == 'age'
    bad = X.iloc[:3].astype({'age': object}); bad.iloc[1, bad.columns.get_loc('age')] = 'old'
    with pytest.raises(DataError) as e: fitted.predict(bad)
    assert e.value.column == 'age' and e.value.value == 'old'
    assert fitted.predict_proba(X.iloc[:0]).shape == (0, 2)

def test_bad_training_input(adult):
    X, y = adult
    with pytest.raises(DataError): TabularNNClassifier(**FAST).fit(X.iloc[:0], y.iloc[:0])
    with pytest.raises(TargetError): TabularNNClassifier(**FAST).fit(X.iloc[:50], pd.Series(['a']*50))
    with pytest.raises(TargetError): TabularNNRegressor(**FAST).fit(X.iloc[:50], pd.Series([1.0]*49 + [np.nan]))
    with pytest.raises(DataError): TabularNNClassifier(**FAST).fit(X.iloc[:50], y.iloc[:40])

def test_category_bool_and_regression():
    df = load_example('penguins').dropna(subset=['body_mass_g']).reset_index(drop=True)
    X = df[['species', 'island', 'sex', 'bill_length_mm', 'flipper_length_mm']].astype({'species': 'category'})
    X['heavy_bill'] = df['bill_depth_mm'] > 18            # bool -> embedded
    m = TabularNNRegressor(max_epochs=15, seed=0).fit(X, df['body_mass_g'])
    assert 'heavy_bill' in m.cat_names_ and 'species' in m.cat_names_ and 'bill_length_mm' in m.cont_names_
    rmse = np.sqrt(((m.predict(X) - df['body_mass_g'])**2).mean())
    assert rmse < 0.6 * df['body_mass_g'].std()
    back = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(back.predict(X), m.predict(X))

def test_label_encoded():
    from sklearn.linear_model import LogisticRegression
    df = load_example('penguins').dropna()
    X, y = df[['bill_length_mm', 'flipper_length_mm']], df['species']
    m = LabelEncoded(LogisticRegression(max_iter=1000)).fit(X, y)
    assert list(m.classes_) == sorted(y.unique()) and set(m.predict(X)) <= set(y)
    assert m.predict_proba(X).shape == (len(X), 3)
    assert clone(m).get_params()['estimator__max_iter'] == 1000

@pytest.mark.parametrize('name,target', [('titanic', 'survived'), ('penguins', 'species'), ('cars', 'Miles_per_Gallon')])
def test_zoo_makes_valid_pipelines(name, target):
    from assembly_line.metrics import model_scores
    df = load_example(name).dropna(subset=[target]).reset_index(drop=True)
    schema = infer_schema(df, target=target)
    cands = zoo(schema.task, seed=7)
    assert {'linear', 'knn', 'random_forest', 'extra_trees', 'hist_gb', 'tabular_nn'} <= set(cands)
    tr, te = df.iloc[:250], df.iloc[250:330]
    for n, c in cands.items():
        assert isinstance(c, Candidate) and c.flavour in ('tree', 'linear', 'nn')
        pipe = c.make(schema)
        assert [s for s,_ in pipe.steps] == ['preprocess', 'model']
        with pytest.raises(SkNotFittedError): check_is_fitted(pipe.named_steps['model'])   # a fresh, unfitted model
        rs = {k: v for k,v in pipe.get_params().items() if k.startswith('model__') and k.endswith(('random_state', 'random_seed', '__seed'))}
        assert all(v == 7 for v in rs.values()), (n, rs)
        if n == 'tabular_nn': pipe.set_params(model__max_epochs=3)
        pipe.fit(tr[schema.features], tr[target])
        s = model_scores(pipe, te[schema.features], schema.task)
        assert np.isfinite(s).all() and len(s) == len(te), n
        assert clone(pipe).get_params().keys() == pipe.get_params().keys()

def test_zoo_bad_arguments():
    with pytest.raises(ConfigError): zoo('ranking')
    with pytest.raises(ConfigError): zoo('binary', include=['svm'])
    with pytest.raises(ConfigError): zoo('binary', exclude=['nope'])
    assert 'linear' not in zoo('binary', exclude=['linear'])

@pytest.fixture(scope='module')
def penguins():
    df = load_example('penguins')
    return df, infer_schema(df, target='species')

@pytest.fixture
def one_thread():
    "Boosting with one OpenMP thread: two threads spin-waiting on a busy 2-core machine screen ten times slower."
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1): yield

def test_screen_ranks_and_explains(penguins, one_thread):
    df, schema = penguins
    res = screen(zoo(schema.task, include=['linear', 'knn', 'hist_gb']), df, schema, metric='accuracy', n_folds=3, top_k=1, noise=0)
    t = res.table
    assert list(t.columns) == ['model', 'family', 'flavour', 'score', 'sd', 'folds', 'fit_s', 'status', 'reason']
    assert t['score'].is_monotonic_decreasing and res.kept == ['linear'] or res.kept[0] == t['model'][0]
    assert (t['status'] == 'kept').sum() == 1 and set(t['status']) <= {'kept', 'dropped'}
    assert (t['folds'] == 3).all() and t['reason'].notna().all()
    md = res._repr_markdown_()
    assert 'accuracy' in md and 'kept' in md and all(n in md for n in t['model'])

def test_screen_honours_budget(penguins):
    df, schema = penguins
    cands = zoo(schema.task, include=['random_forest', 'extra_trees', 'hist_gb', 'linear', 'knn'])
    res = screen(cands, df, schema, budget=1.0, n_folds=3)
    assert res.budget == 1.0
    t = res.table
    assert (t['status'] == 'skipped').any()
    assert t.loc[t['status'] == 'skipped', 'reason'].str.contains('budget|left').all()
    # the folds run one after another and none starts after the deadline: every fit but the last one ended inside the
    # budget, whatever the load (a busy machine makes folds slower and fewer, never more)
    ran = t.set_index('model').loc[list(cands)]
    last = ran.index[ran['folds'] > 0][-1]
    assert ran['fit_s'].sum() - ran.loc[last, 'fit_s'] < res.budget, ran[['folds', 'fit_s', 'status']]
    # each skip is the rule the reason states, in the figures it recorded
    for reason in t['reason'].dropna():
        if m := re.match(r"([\d.]+) s left, less than the fastest fold so far \(([\d.]+) s\)", reason):
            assert float(m[1]) <= float(m[2]), reason
        if m := re.match(r"too slow for the budget: one fold took ([\d.]+) s, ([\d.]+) s left", reason):
            assert float(m[1]) >= float(m[2]), reason

def test_screen_records_failures(penguins):
    from sklearn.dummy import DummyClassifier
    df, schema = penguins
    class Broken(DummyClassifier):
        def fit(self, X, y): raise RuntimeError('boom')
    cands = [zoo(schema.task, include=['linear'])['linear'],
             Candidate('broken', 'test', 'tree', Broken, schema.task, 'always fails')]
    res = screen(cands, df, schema)
    row = res.table.set_index('model').loc['broken']
    assert row['status'] == 'failed' and 'boom' in row['reason'] and res.kept == ['linear']

def test_screen_bad_arguments(penguins):
    df, schema = penguins
    with pytest.raises(ConfigError): screen({}, df, schema)
    with pytest.raises(ConfigError): screen(zoo(schema.task, include=['linear']), df, schema, metric='rmse')
    with pytest.raises(ConfigError): screen(zoo(schema.task, include=['linear']), df, schema, n_folds=1)
    with pytest.raises(TargetError): screen(zoo(schema.task, include=['linear']), df.drop(columns='species'), schema)
