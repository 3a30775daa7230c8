"Contracts of `assembly_line.explain`: additivity on every task and path, the column map, caching outside the line, bad input."
import warnings
import numpy as np, pandas as pd, pytest
from assembly_line.core import SchemaError, ConfigError, TaskKind
from assembly_line.datasets import load_example
from assembly_line.line import AssemblyLine
from assembly_line.feature_plan import make_preprocessor
from assembly_line.schema import infer_schema
from assembly_line.explain import column_map, Explanation, importance_ci, plot_summary, plot_dependence

warnings.filterwarnings('ignore')

def _fit(df, target, include, **kw):
    return AssemblyLine(target=target, time_budget=5, seed=0, deterministic=True, tune=False, include=include, **kw).fit(df)

@pytest.fixture(scope='module')
def adult():
    df = load_example('adult', n=1200, seed=1)
    return df, _fit(df.iloc[:1000], 'income', ['lightgbm', 'random_forest'])

def test_binary_contributions_add_up_to_the_probability(adult):
    df, line = adult
    rows = df.iloc[1000:]
    ex = line.explain(rows)
    p = line.predict_proba(rows).to_numpy()
    np.testing.assert_allclose(ex.prediction, p, atol=1e-6)
    fr = ex.to_frame()
    assert list(fr.columns) == [f'contrib_{c}' for c in line.schema_.features] + ['base_value']
    assert fr.index.equals(rows.index)
    np.testing.assert_allclose(fr.filter(like='contrib_').sum(1) + fr.base_value, p[:, 1], atol=1e-6)
    # the two classes' contributions mirror each other
    np.testing.assert_allclose(ex.values[..., 0], -ex.values[..., 1], atol=1e-12)
    assert 'probability' in ex.output and ex.method == 'tree'

def test_one_row_and_the_importance_table(adult):
    df, line = adult
    one = df.iloc[[1100]]
    ex = line.explain(one)
    assert ex.values.shape == (1, len(line.schema_.features), 2)
    np.testing.assert_allclose(ex.prediction, line.predict_proba(one).to_numpy(), atol=1e-6)
    imp = line.explain(df.iloc[1000:]).importance()
    assert set(imp.feature) == set(line.schema_.features)
    assert abs(imp.share.sum() - 1) < 1e-9 and imp.mean_abs.is_monotonic_decreasing

def test_multiclass_explains_the_predicted_class_and_keeps_every_class():
    peng = load_example('penguins').dropna(subset=['species']).reset_index(drop=True)
    line = _fit(peng, 'species', ['hist_gb', 'extra_trees'])
    ex = line.explain(peng.head(30))
    p = line.predict_proba(peng.head(30))
    np.testing.assert_allclose(ex.prediction, p.to_numpy(), atol=1e-6)
    fr = ex.to_frame()
    assert (fr.explained_class.to_numpy() == line.predict(peng.head(30)).to_numpy()).all()
    np.testing.assert_allclose(fr.filter(like='contrib_').sum(1) + fr.base_value, p.max(1), atol=1e-6)

def test_regression_contributions_add_up_to_the_prediction():
    dia = load_example('diamonds', n=1000, seed=0)
    line = _fit(dia.iloc[:800], 'price', ['lightgbm', 'extra_trees'])
    ex = line.explain(dia.iloc[800:])
    np.testing.assert_allclose(ex.prediction[:, 0], line.predict(dia.iloc[800:]).to_numpy(), atol=1e-6)
    assert 'explained_class' not in ex.to_frame()

def test_a_non_tree_member_needs_background_and_adds_up_with_it(adult):
    df, _ = adult
    line = _fit(df.iloc[:600], 'income', ['linear'])
    with pytest.raises(ConfigError, match='background'): line.explain(df.iloc[1000:1003])
    ex = line.explain(df.iloc[1000:1010], background=df.iloc[:600])
    assert ex.method == 'permutation'
    np.testing.assert_allclose(ex.prediction, line.predict_proba(df.iloc[1000:1010]).to_numpy(), atol=1e-6)

def test_column_map_of_a_one_hot_preprocessor():
    peng = load_example('penguins').dropna(subset=['species'])
    schema = infer_schema(peng, target='species')
    pre = make_preprocessor(schema, 'linear').fit(peng[schema.features], peng.species)
    M = column_map(pre, schema.features)
    out = list(pre.named_steps['columns'].get_feature_names_out())
    np.testing.assert_allclose(M.sum(1), 1)
    island = schema.features.index('island')
    owned = [o for o, row in zip(out, M) if row[island] == 1]
    assert len(owned) >= 2 and all(o.startswith('island') for o in owned), owned

def test_explaining_leaves_the_saved_bundle_unchanged(adult, tmp_path):
    df, line = adult
    a = line.save(tmp_path/'a'); line.explain(df.iloc[1000:1010]); b = line.save(tmp_path/'b')
    assert (tmp_path/'a'/'model.skops').read_bytes() == (tmp_path/'b'/'model.skops').read_bytes()

def test_bad_rows_are_refused_naming_the_column(adult):
    df, line = adult
    with pytest.raises(SchemaError) as e: line.explain(df.iloc[1000:1005].drop(columns=['age']))
    assert 'age' in str(e.value)
    with pytest.raises(ConfigError): plot_dependence(line.explain(df.iloc[1000:1005]), 'no_such_column')

def test_permutation_importance_has_an_interval(adult):
    df, line = adult
    imp = importance_ci(line, df.iloc[1000:], n_repeats=4)
    assert (imp.low <= imp.importance).all() and (imp.importance <= imp.high).all()
    assert set(imp.feature) == set(line.schema_.features)

# ------------------------------------------------------------------ background rows drawn from the monitoring reference

def test_reference_background_is_seeded_and_follows_each_column(adult, tmp_path):
    from assembly_line.reference import make_reference, write_reference, reference_background, OTHER
    df, line = adult
    feats = list(line.schema_.features)
    train = df.iloc[:1000].drop(columns='income')
    ref = make_reference(train, line.schema_, min_share=0.05)
    a, b = reference_background(ref, feats, n=500, seed=3), reference_background(ref, feats, n=500, seed=3)
    pd.testing.assert_frame_equal(a, b)                                   # same seed, same rows
    assert not a.equals(reference_background(ref, feats, n=500, seed=4))
    assert list(a.columns) == feats and len(a) == 500
    assert ref.columns['native-country'].shares[-2] > 0                   # some countries were pooled into OTHER ...
    assert OTHER not in set(a['native-country'].dropna())                 # ... and pooled levels are never drawn
    assert set(a['workclass'].dropna()) <= set(train['workclass'].dropna())
    assert abs(a['workclass'].isna().mean() - train['workclass'].isna().mean()) < 0.05
    assert a['age'].between(train.age.min(), train.age.max()).all()
    assert abs(a.age.median() - train.age.median()) <= 3
    # a column the reference does not describe is missing in every row
    assert reference_background(ref, feats + ['not_described'], n=5)['not_described'].isna().all()
    # from a bundle: the same rows as from the reference itself; a bare bundle says how to get one
    bare = line.save(tmp_path/'bare')
    with pytest.raises(ConfigError, match='monitoring reference') as e: reference_background(bare, feats)
    assert '--train' in str(e.value)
    with_ref = line.save(tmp_path/'with_ref'); write_reference(with_ref, ref)
    pd.testing.assert_frame_equal(reference_background(with_ref, feats, n=500, seed=3), a)
    with pytest.raises(ConfigError): reference_background(ref, feats, n=0)

def test_a_mixed_line_explained_with_a_reference_background_adds_up(adult):
    from assembly_line.reference import make_reference, reference_background
    df, _ = adult
    line = _fit(df.iloc[:800], 'income', ['linear', 'hist_gb'])
    assert line.explainer().method == 'tree+permutation'
    bg = reference_background(make_reference(df.iloc[:800].drop(columns='income'), line.schema_), line.schema_.features)
    rows = df.iloc[1000:1004]
    ex = line.explain(rows, background=bg)
    np.testing.assert_allclose(ex.prediction, line.predict_proba(rows).to_numpy(), atol=1e-6)
    assert np.abs(ex.values).sum() > 0
