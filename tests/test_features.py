"Contracts and bad-input cases of `assembly_line.features` (the notebook shows the behaviour; this checks the mechanism)."
import inspect, pickle
import numpy as np, pandas as pd, pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.pipeline import Pipeline
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from assembly_line import core
from assembly_line.core import ConfigError, DataError, SchemaError, Role
from assembly_line.datasets import load_example
from assembly_line.schema import infer_schema
from assembly_line.clean import clean
from assembly_line.features import *
from assembly_line.feature_plan import *


# ---------------------------------------------------------------- scikit-learn's own checks (numeric-array transformers)
@parametrize_with_checks([FillMissing(), FillMissing(strategy='mean', add_indicator=False),
                          FillMissing(strategy='constant', fill_value=-1.), FeatureFunction()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- data
@pytest.fixture(scope='module')
def titanic(): return load_example('titanic')

@pytest.fixture(scope='module')
def adult(): return clean(load_example('adult', n=1200, seed=1), target='income').df.reset_index(drop=True)

@pytest.fixture(scope='module')
def cars(): return load_example('cars').dropna(subset=['Miles_per_Gallon']).reset_index(drop=True)

@pytest.fixture(scope='module')
def hotel(): return load_example('hotel_bookings', n=400, seed=2)


# ---------------------------------------------------------------- the contract for DataFrame-only transformers
def _frame_cases(titanic, cars, hotel):
    t = titanic
    return [
        (DatePartTransformer(), hotel[['arrival_date']], hotel[['arrival_date']].iloc[:50]),
        (DatePartTransformer(parts=('year', 'elapsed')), hotel[['arrival_date']], hotel[['arrival_date']].iloc[:5]),
        (AgeTransformer(reference=1983), cars[['Year']], cars[['Year']].iloc[:20]),
        (AgeTransformer(unit='days'), cars[['Year']], cars[['Year']].iloc[:20]),
        (DateDiffTransformer([('reservation_status_date', 'arrival_date')]),
         hotel[['reservation_status_date', 'arrival_date']], hotel[['reservation_status_date', 'arrival_date']].iloc[:9]),
        (RareLevelGrouper(min_frequency=10), t[['embarked', 'cabin']], t[['embarked', 'cabin']].iloc[600:]),
        (TextFeatures(max_features=5), t[['name']], t[['name']].iloc[:30]),
        (InputGuard(numeric=['age']), t[['age', 'sex']], t[['age', 'sex']].iloc[:7]),
        (OutputCheck(), t[['age', 'fare']].fillna(0), t[['age', 'fare']].fillna(0).iloc[:7]),
    ]

@pytest.fixture(scope='module')
def frame_cases(titanic, cars, hotel): return _frame_cases(titanic, cars, hotel)

def test_frame_transformer_contract(frame_cases):
    for est, X, Xnew in frame_cases:
        name = type(est).__name__
        # __init__ stores its parameters and nothing else
        params = est.get_params()
        assert set(params) == set(inspect.signature(type(est).__init__).parameters) - {'self'}, name
        assert not [a for a in vars(est) if a.endswith('_') and not a.startswith('_')], name
        # not fitted: both error types, before anything is learned
        with pytest.raises(SkNotFittedError): est.transform(Xnew)
        with pytest.raises(core.NotFittedError): clone(est).transform(Xnew)
        before = X.copy()
        fitted = clone(est)
        assert fitted.fit(X) is fitted, name
        pd.testing.assert_frame_equal(X, before)                   # the caller's frame is not mutated
        out = fitted.transform(Xnew)
        assert isinstance(out, pd.DataFrame) and out.index.equals(Xnew.index), name
        assert list(out.columns) == list(fitted.get_feature_names_out()), name
        # set_output works both ways; clone gives an unfitted copy with equal params
        assert isinstance(clone(est).set_output(transform='pandas').fit(X).transform(Xnew), pd.DataFrame)
        c = clone(fitted)
        assert c.get_params() == fitted.get_params() and not hasattr(c, 'feature_names_out_'), name
        # set_params round trip
        assert clone(est).set_params(**params).get_params() == params
        # fitted state pickles and gives the same output
        pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(fitted)).transform(Xnew), out)
        # refitting forgets the previous fit: fit on one column subset, then on the full set
        if X.shape[1] > 1 and name not in ('DateDiffTransformer',):
            again = clone(est).fit(X.iloc[:, :1]).fit(X)
            assert list(again.get_feature_names_out()) == list(fitted.get_feature_names_out()), name
        # a missing input column is named
        with pytest.raises(SchemaError, match=repr(X.columns[-1])): fitted.transform(Xnew.drop(columns=X.columns[-1]))

def test_numpy_input_names_columns():
    X = np.array([['a'], ['b'], ['a'], [None]], dtype=object)
    g = RareLevelGrouper(min_frequency=1).fit(X)
    assert list(g.get_feature_names_out()) == ['x0']
    assert g.transform(X)['x0'].astype(str).tolist() == ['a', 'b', 'a', NA_LEVEL]


# ---------------------------------------------------------------- single transformers: behaviour and bad input
def test_fill_missing_learns_on_training_rows_only(titanic):
    tr, te = titanic.iloc[:500], titanic.iloc[500:]
    fm = FillMissing().fit(tr[['age', 'fare']])
    out = fm.transform(te[['age', 'fare']].assign(fare=np.nan))      # fare had no gaps in training
    assert out.shape == (len(te), 3)                                   # fare gets no indicator: fixed at fit
    assert np.all(out[:, 1] == tr['fare'].median()) and not np.isnan(out).any()
    assert np.all(out[te['age'].isna().to_numpy(), 0] == tr['age'].median())
    assert tr['age'].median() != te['age'].median()

def test_fill_missing_inf_and_all_missing():
    X = pd.DataFrame({'a': [1., np.inf, 3., -np.inf], 'b': [np.nan]*4})
    fm = FillMissing().set_output(transform='pandas').fit(X)
    out = fm.transform(X)
    assert list(out.columns) == ['a', 'b', 'a_na', 'b_na']
    assert out['a'].tolist() == [1., 2., 3., 2.] and (out['b'] == 0).all() and out['a_na'].tolist() == [0, 1, 0, 1]
    with pytest.raises(ConfigError): FillMissing(strategy='mode').fit(X)

def test_date_parts_values_and_bad_dates():
    d = pd.DataFrame({'d': pd.to_datetime(['2020-03-31', '2021-01-01', None])})
    out = DatePartTransformer().fit(d).transform(d)
    assert out.loc[0, 'd_is_month_end'] == 1 and out.loc[0, 'd_is_quarter_end'] == 1 and out.loc[1, 'd_is_year_start'] == 1
    assert out.loc[1, 'd_week'] == 53 and out.loc[0, 'd_dayofweek'] == 1          # ISO week of 2021-01-01; a Tuesday
    assert out.loc[2].isna().all()                                                  # a missing date gives missing parts
    assert out.loc[1, 'd_elapsed'] == pd.Timestamp('2021-01-01').timestamp()
    s = pd.DataFrame({'d': ['2020-01-01', '2020-02-30']})
    with pytest.raises(DataError, match="row=1"): DatePartTransformer().fit(s)
    with pytest.raises(ConfigError): DatePartTransformer(parts=('year', 'fortnight')).fit(d)

def test_age_and_date_diff(cars):
    a = AgeTransformer(reference='1983-01-01').fit(cars[['Year']]).transform(cars[['Year']])
    np.testing.assert_allclose(a['Year_age'], (pd.Timestamp('1983-01-01') - cars['Year']).dt.days/365.2425)
    yr = cars[['Year']].assign(Year=cars['Year'].dt.year)
    with pytest.raises(ConfigError, match="no days"): AgeTransformer(unit='days').fit(yr)
    with pytest.raises(ConfigError): AgeTransformer(reference='soon').fit(yr)
    with pytest.raises(DataError): AgeTransformer().fit(pd.DataFrame({'y': [np.nan, np.nan]}))
    d = pd.DataFrame({'end': ['2020-01-03', None], 'start': ['2020-01-01', '2020-01-01']})
    diff = DateDiffTransformer([('end', 'start')], unit='hours').fit(d).transform(d)
    assert diff.iloc[0, 0] == 48 and np.isnan(diff.iloc[1, 0])
    with pytest.raises(ConfigError): DateDiffTransformer([]).fit(d)
    with pytest.raises(ConfigError): DateDiffTransformer([('end', 'start')], unit='weeks').fit(d)

def test_rare_levels_seen_unseen_missing():
    tr = pd.DataFrame({'c': ['a']*5 + ['b']*2 + [1.0, None]})
    g = RareLevelGrouper(min_frequency=3).fit(tr)
    out = g.transform(pd.DataFrame({'c': ['a', 'b', 'z', None, 1]}))['c'].astype(str).tolist()
    assert out == ['a', OTHER_LEVEL, UNSEEN_LEVEL, NA_LEVEL, OTHER_LEVEL]           # 1 == 1.0: a seen rare level
    assert RareLevelGrouper(min_frequency=0.5).fit(tr).levels_['c'] == ['a']       # a fraction of the training rows
    with pytest.raises(ConfigError): RareLevelGrouper(min_frequency=0).fit(tr)

def test_text_features_missing_text_and_no_vocabulary():
    X = pd.DataFrame({'t': ['red apple', None, 'green pear', 'red pear']})
    tf = TextFeatures(max_features=10, min_df=2).fit(X)
    out = tf.transform(X)
    assert list(out.columns) == ['t_len', 't_words', 't_tfidf_pear', 't_tfidf_red']
    assert out.loc[1].tolist() == [0, 0, 0, 0]
    assert list(TextFeatures(min_df=5).fit(X).get_feature_names_out()) == ['t_len', 't_words']   # no frequent term
    with pytest.raises(ConfigError): TextFeatures(max_features=0, stats=False).fit(X)

def test_feature_function_errors(cars):
    with pytest.raises(ConfigError, match="keep the rows"): FeatureFunction(lambda d: d.iloc[:3][['Cylinders']]).fit(cars)
    with pytest.raises(ConfigError, match="DataFrame"): FeatureFunction(lambda d: 3).fit(cars)
    ff = FeatureFunction(lambda d: {'w2': d['Weight_in_lbs']*2, 'heavy': d['Weight_in_lbs'] > 3000}).fit(cars)
    assert list(ff.get_feature_names_out()) == ['w2', 'heavy'] and ff.transform(cars).dtype == float

def test_target_encoding_is_out_of_fold(adult):
    y = (adult['income'] == '>50K').astype(int)
    X = adult[['fnlwgt']]
    enc = make_categorical_encoder('target', min_frequency=1, target_type='binary', seed=0)
    oof = enc.fit_transform(X, y)
    insample = enc.transform(X)
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y, insample.ravel()) > 0.9 > 0.65 > roc_auc_score(y, oof.ravel())
    with pytest.raises(ConfigError, match="needs the target"): make_categorical_encoder('target').fit(X)


# ---------------------------------------------------------------- the plan
def test_plan_roles_flavours_and_overrides(titanic):
    s = infer_schema(titanic, target='survived')
    for f in FLAVOURS:
        p = plan_features(s, f, df=titanic)
        assert set(p.steps) == set(s.features) and 'survived' in p.dropped
        md = p._repr_markdown_()
        assert '| age | numeric |' in md and f"`{f}`" in md
    tree, lin, nn = (plan_features(s, f, df=titanic) for f in FLAVOURS)
    assert tree.steps['sex'] == ['ordinal'] and lin.steps['sex'] == ['onehot'] and nn.steps['sex'] == ['category']
    assert tree.steps['ticket'] == ['target'] and lin.steps['ticket'] == ['target', 'scale']
    assert plan_features(s, 'tree', df=titanic, high_cardinality=1000).steps['ticket'] == ['ordinal']
    p = plan_features(s, 'tree', steps={'age': ['impute', 'scale']}, drop=['cabin'])
    assert p.steps['age'] == ['impute', 'scale'] and 'cabin' not in p.steps and p.dropped['cabin'] == 'dropped by the user'
    with pytest.raises(ConfigError, match="target"): p.set_steps('survived', ['impute'])
    with pytest.raises(ConfigError, match="no column"): p.set_steps('deck', ['impute'])
    with pytest.raises(ConfigError, match="not a feature"): p.drop('deck')
    with pytest.raises(ConfigError, match="unknown flavour"): make_preprocessor(s, 'gbm')
    with pytest.raises(ConfigError, match="plan is for"): make_preprocessor(s, 'linear', plan=p)
    p.add_function(np.log1p, columns=['fare'], name='log_fare')
    with pytest.raises(ConfigError, match="already has"): p.add_function(np.log1p, columns=['fare'], name='log_fare')
    with pytest.raises(ConfigError, match="no column"): p.add_date_diff('a', 'b')

def test_plan_uses_schema_cardinality_without_data(adult):
    s = infer_schema(adult, target='income')
    assert plan_features(s, 'tree', high_cardinality=20).steps['native-country'] == ['target']
    assert plan_features(s, 'tree', high_cardinality=200).steps['native-country'] == ['ordinal']


# ---------------------------------------------------------------- the preprocessor: outputs, new data, bad input
@pytest.mark.parametrize('flavour', FLAVOURS)
def test_preprocessor_outputs_on_real_data(flavour, titanic, adult, cars, hotel):
    for df, target in ((titanic, 'survived'), (adult, 'income'), (cars, 'Miles_per_Gallon'), (hotel, 'is_canceled')):
        s = infer_schema(df, target=target)
        tr, te = df.iloc[:len(df)*2//3], df.iloc[len(df)*2//3:]
        pre = make_preprocessor(s, flavour, df=tr).fit(tr, tr[target])
        out = pre.transform(te)
        assert len(out) == len(te) and out.columns.is_unique
        cats = [c for c in out.columns if isinstance(out[c].dtype, pd.CategoricalDtype)]
        num = out.drop(columns=cats)
        assert all(pd.api.types.is_float_dtype(t) for t in num.dtypes), (target, flavour)
        assert np.isfinite(num.to_numpy()).all(), (target, flavour)
        if flavour == 'nn': assert cats and not out[cats].isna().any().any()
        else: assert not cats

@pytest.mark.parametrize('flavour', FLAVOURS)
def test_few_rows_path_matches_the_vector_path(flavour, titanic, adult, cars, hotel, monkeypatch):
    "Up to `_FEW_ROWS` rows the level lookups go value by value; every output must equal the vector path's, odd values included."
    import assembly_line.features as F
    for df, target in ((titanic, 'survived'), (adult, 'income'), (cars, 'Miles_per_Gallon'), (hotel, 'is_canceled')):
        s = infer_schema(df, target=target)
        tr, te = df.iloc[:len(df)*2//3], df.iloc[len(df)*2//3:].copy()
        cat = [c for c in s.features if s.columns[c].role in (Role.CATEGORICAL, Role.BOOLEAN) and te[c].dtype == object]
        num = [c for c in s.features if s.columns[c].role is Role.NUMERIC]
        if cat: te.loc[te.index[:3], cat[0]] = ['never-seen-level', None, te[cat[0]].iloc[5]]
        if num: te[num[0]] = te[num[0]].astype(float); te.loc[te.index[:3], num[0]] = [np.nan, np.inf, 1e9]
        pre = make_preprocessor(s, flavour, df=tr).fit(tr, tr[target])
        for rows in (te.iloc[:1], te.iloc[1:2], te.iloc[:3], te.iloc[:F._FEW_ROWS], te.iloc[::-1].iloc[:7]):
            few = pre.transform(rows)
            with monkeypatch.context() as m:
                m.setattr(F, '_FEW_ROWS', -1)
                many = pre.transform(rows)
            pd.testing.assert_frame_equal(few, many, obj=f"{target}/{flavour}/{len(rows)} rows")

def test_preprocessor_new_data_at_predict_time(adult):
    s = infer_schema(adult, target='income')
    tr, te = adult.iloc[:900], adult.iloc[900:].astype({'age': float})
    assert not tr['age'].isna().any()
    te.loc[te.index[:3], 'age'] = [np.nan, np.inf, -np.inf]               # gaps where training had none
    te.loc[te.index[:3], 'occupation'] = ['Astronaut', None, 'Sales']      # unseen and missing levels
    te['extra'] = 1                                                         # an extra column is ignored
    te = te[te.columns[::-1]]                                               # and column order does not matter
    for f in ('tree', 'linear'):
        pre = make_preprocessor(s, f, df=tr).fit(tr, tr['income'])
        out = pre.transform(te)
        assert np.isfinite(out.to_numpy()).all() and 'extra' not in out.columns and 'age_na' not in out.columns
        assert (out['age'].iloc[:3] == out['age'].iloc[:3].iloc[0]).all()    # all three imputed the same way
    tree = make_preprocessor(s, 'tree', df=tr).fit(tr, tr['income'])
    assert tree.transform(te)['age'].iloc[0] == tr['age'].median()
    assert tree.transform(te)['occupation'].iloc[0] == -1.                   # unseen: the dedicated code

def test_preprocessor_bad_input(titanic):
    s = infer_schema(titanic, target='survived')
    pre = make_preprocessor(s, 'tree', df=titanic).fit(titanic, titanic['survived'])
    with pytest.raises(SchemaError, match="'age'") as e: pre.transform(titanic.drop(columns=['age']))
    assert e.value.column == 'age'
    bad = titanic.astype({'fare': object}); bad.loc[7, 'fare'] = 'free'
    with pytest.raises(SchemaError) as e: pre.transform(bad)
    assert (e.value.column, e.value.row, e.value.value) == ('fare', 7, 'free')
    ok = titanic.astype({'fare': str})                                        # numbers as text are converted
    pd.testing.assert_frame_equal(pre.transform(ok), pre.transform(titanic))
    with pytest.raises(DataError, match="no rows"): pre.transform(titanic.iloc[:0])
    with pytest.raises(DataError, match="DataFrame"): pre.transform(titanic.to_numpy())
    with pytest.raises(ConfigError, match="needs the target"): clone(pre).fit(titanic)   # target encoding of ticket

def test_output_check_refuses_duplicates_and_nonfinite(cars):
    s = infer_schema(cars, target='Miles_per_Gallon')
    p = plan_features(s, 'tree').add_function(lambda d: d[['Cylinders']], columns=['Cylinders'], name='dup')
    with pytest.raises(ConfigError, match="'Cylinders' twice"): make_preprocessor(s, plan=p).fit(cars)
    p = plan_features(s, 'tree').set_steps('Year', ['age'])                  # an age with no imputation after it
    pre = make_preprocessor(s, plan=p).fit(cars)
    with pytest.raises(DataError, match="Year_age"): pre.transform(cars.assign(Year=pd.NaT))

def test_preprocessor_params_clone_and_reproducibility(adult):
    s = infer_schema(adult, target='income')
    pre = make_preprocessor(s, 'linear', df=adult)
    assert pre.get_params()['columns__onehot__onehot__onehot__max_categories'] == 20
    pre.set_params(columns__onehot__onehot__onehot__max_categories=3)
    a = clone(pre).fit_transform(adult, adult['income'])
    b = clone(pre).fit_transform(adult, adult['income'])
    pd.testing.assert_frame_equal(a, b)                                       # seeded target-encoding folds
    assert len([c for c in a.columns if c.startswith('workclass_')]) <= 3

def test_pipeline_trains_on_out_of_fold_encodings(adult):
    s = infer_schema(adult, target='income')
    p = plan_features(s, 'linear', df=adult, steps={'fnlwgt': ['target']})
    model = Pipeline([('preprocess', make_preprocessor(s, plan=p)), ('model', LogisticRegression(max_iter=500))])
    model.fit(adult, adult['income'])
    enc = model.named_steps['preprocess']
    seen_in_fit = make_preprocessor(s, plan=p).fit_transform(adult, adult['income'])['fnlwgt']
    assert not np.allclose(seen_in_fit, enc.transform(adult)['fnlwgt'])      # fit used cross-fitted values

@pytest.mark.slow
def test_skops_round_trip(titanic, tmp_path):
    skio = pytest.importorskip('skops.io')
    s = infer_schema(titanic, target='survived')
    pre = make_preprocessor(s, 'nn', df=titanic).fit(titanic, titanic['survived'])
    skio.dump(pre, tmp_path/'pre.skops')
    untrusted = skio.get_untrusted_types(file=tmp_path/'pre.skops')
    assert all(t.split('.')[0] in ('assembly_line', 'sklearn', 'numpy', 'pandas', 'builtins', 'collections') for t in untrusted), untrusted
    back = skio.load(tmp_path/'pre.skops', trusted=untrusted)
    pd.testing.assert_frame_equal(back.transform(titanic), pre.transform(titanic))

def test_guard_parses_dates_with_the_recorded_format():
    X = pd.DataFrame({'d': ['13/01/2020', '01/02/2020']})
    g = InputGuard(datetime=['d'], date_formats={'d': '%d/%m/%Y'}).fit(X)
    assert g.transform(X)['d'].dt.month.tolist() == [1, 2]
    with pytest.raises(DataError, match="row=1"): g.transform(pd.DataFrame({'d': ['13/01/2020', '2020-02-01']}))
