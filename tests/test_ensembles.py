"Contracts of assembly_line.ensembles, .stacking and .bagging: sklearn API, greedy guarantee, OOF-only stacking, pickle round trips, bad input."
import pickle
import numpy as np, pandas as pd, pytest
from threadpoolctl import threadpool_limits
from sklearn.base import clone, is_classifier, is_regressor, BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.pipeline import Pipeline
from assembly_line.core import TaskKind, ConfigError, DataError, TargetError, NotFittedError
from assembly_line.datasets import load_example
from assembly_line.metrics import get_metric
from assembly_line.ensembles import BlendEnsemble, GreedyEnsemble, cross_fit_all, optimize_weights, _oof_folds
from assembly_line.stacking import StackEnsemble
from assembly_line.bagging import make_bagging, make_boosting

@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1): yield

@pytest.fixture(scope='module')
def penguins():
    df = load_example('penguins').dropna().sample(frac=1, random_state=0)
    X = df[['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g']].reset_index(drop=True)
    return X.iloc[:250], df['species'].to_numpy()[:250], X.iloc[250:], df['species'].to_numpy()[250:]

@pytest.fixture(scope='module')
def cars():
    df = load_example('cars').dropna(subset=['Miles_per_Gallon', 'Horsepower'])
    X = df[['Cylinders', 'Displacement', 'Horsepower', 'Weight_in_lbs', 'Acceleration']].reset_index(drop=True)
    return X.iloc[:300], df['Miles_per_Gallon'].to_numpy()[:300], X.iloc[300:], df['Miles_per_Gallon'].to_numpy()[300:]

CLF = [('lr', LogisticRegression(max_iter=2000)), ('tree', DecisionTreeClassifier(max_depth=3, random_state=0)),
       ('knn', KNeighborsClassifier(7))]
REG = [('ridge', Ridge()), ('tree', DecisionTreeRegressor(max_depth=4, random_state=0))]

def _kinds():
    return [BlendEnsemble(CLF, weights='optimize', metric='log_loss', cv=3), StackEnsemble(CLF, cv=3),
            GreedyEnsemble(CLF, metric='log_loss', n_iter=10, cv=3)]

@pytest.mark.parametrize('ens', _kinds(), ids=lambda e: type(e).__name__)
def test_clone_get_params_and_kind(ens):
    p = ens.get_params()
    assert 'lr__C' in p and p['cv'] == 3
    c = clone(ens)
    assert type(c) is type(ens) and c.get_params()['lr__C'] == p['lr__C']
    c.set_params(lr__C=0.5)
    assert c.get_params()['lr__C'] == 0.5 and ens.get_params()['lr__C'] == 1.0
    assert is_classifier(ens)
    assert is_regressor(type(ens)(REG) if not isinstance(ens, GreedyEnsemble) else GreedyEnsemble(REG))

@pytest.mark.parametrize('ens', _kinds(), ids=lambda e: type(e).__name__)
def test_fit_predict_and_pickle_round_trip(ens, penguins):
    X, y, Xt, yt = penguins
    ens.fit(X, y)
    P = ens.predict_proba(Xt)
    assert P.shape == (len(Xt), 3) and np.allclose(P.sum(1), 1)
    assert list(ens.classes_) == sorted(set(y))
    assert set(ens.predict(Xt)) <= set(ens.classes_)
    back = pickle.loads(pickle.dumps(ens))
    np.testing.assert_array_equal(back.predict_proba(Xt), P)
    r = ens.to_result()
    assert r.name == ens.name and r.oof.shape == (len(X), 3) and r.completed == 3

def test_regression_round_trip(cars):
    X, y, Xt, yt = cars
    for ens in (BlendEnsemble(REG, cv=3), StackEnsemble(REG, cv=3, passthrough=True), GreedyEnsemble(REG, n_iter=5, cv=3)):
        ens.fit(X, y)
        p = ens.predict(Xt)
        assert p.shape == (len(Xt),) and np.isfinite(p).all()
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(ens)).predict(Xt), p)
        with pytest.raises(ConfigError): ens.predict_proba(Xt)

@pytest.fixture(scope='module')
def oofs(penguins):
    X, y, _, _ = penguins
    folds = _oof_folds(4, X, y, TaskKind.MULTICLASS)
    return cross_fit_all(CLF, X, y, folds, 'multiclass'), y

@pytest.mark.parametrize('metric', ['log_loss', 'accuracy', 'roc_auc'])
@pytest.mark.parametrize('init_best_n', [1, 2, 3])
def test_greedy_never_worse_than_best_single(oofs, metric, init_best_n):
    res, y = oofs
    g = GreedyEnsemble.from_results(res, y, metric=metric, n_iter=15, init_best_n=init_best_n)
    m = get_metric(metric)
    best = min(m.loss(y, r.oof, r.classes) for r in res.values())
    assert m.loss(y, g.oof_, g.classes_) <= best + 1e-12
    assert np.isclose(g.weights_.sum(), 1) and (g.weights_ >= 0).all()
    np.testing.assert_allclose(g.weights_, g.counts_/g.counts_.sum())
    assert len(g.trajectory_) == 16

def test_greedy_on_oof_dict_matches_from_results(oofs):
    res, y = oofs
    a = GreedyEnsemble(metric='log_loss', n_iter=10).fit({n: r.oof for n,r in res.items()}, y)
    b = GreedyEnsemble.from_results(res, y, metric='log_loss', n_iter=10)
    pd.testing.assert_series_equal(a.weights_, b.weights_)
    with pytest.raises(NotFittedError): a.predict_proba(np.zeros((2, 4)))

def test_blend_weights(oofs):
    res, y = oofs
    b = BlendEnsemble.from_results(res, y, weights='optimize', metric='log_loss')
    assert np.isclose(b.weights_.sum(), 1) and (b.weights_ >= 0).all()
    m = get_metric('log_loss')
    assert m.loss(y, b.oof_, b.classes_) <= min(m.loss(y, r.oof, r.classes) for r in res.values()) + 1e-12
    w = optimize_weights([r.oof for r in res.values()], y, 'log_loss', b.classes_)
    np.testing.assert_allclose(w, b.weights_.to_numpy())
    fixed = BlendEnsemble.from_results(res, y, weights=[2, 1, 1])
    np.testing.assert_allclose(fixed.weights_, [0.5, 0.25, 0.25])
    for bad in ([1, 2], [1, -1, 1], [0, 0, 0], 'best'):
        with pytest.raises(ConfigError): BlendEnsemble.from_results(res, y, weights=bad)

class Recording(ClassifierMixin, BaseEstimator):
    "A logistic meta-model that remembers what it was trained on."
    def fit(self, X, y):
        self.seen_ = np.array(X, copy=True)
        self.lr_ = LogisticRegression(max_iter=2000).fit(X, y); self.classes_ = self.lr_.classes_
        return self
    def predict_proba(self, X): return self.lr_.predict_proba(X)
    def predict(self, X): return self.lr_.predict(X)

def test_stack_meta_sees_only_oof(penguins):
    X, y, Xt, _ = penguins
    s = StackEnsemble(CLF, meta=Recording(), cv=4).fit(X, y)
    oof = np.hstack([s.members_[n].oof for n in s.members_])   # multiclass: every probability column
    np.testing.assert_array_equal(s.meta_.seen_, oof)
    # the OOF scores differ from in-sample ones (a depth-3 tree and knn see their own rows)
    insample = np.hstack([clone(e).fit(X, y).predict_proba(X) for _,e in CLF])
    assert not np.allclose(s.meta_.seen_, insample)

def test_stack_binary_uses_positive_column_and_second_layer():
    df = load_example('titanic').dropna(subset=['age'])
    X, y = df[['pclass', 'age', 'sibsp', 'parch', 'fare']].reset_index(drop=True), df['survived'].to_numpy()
    s = StackEnsemble(CLF, meta=Recording(), cv=3).fit(X, y)
    np.testing.assert_array_equal(s.meta_.seen_, np.column_stack([s.members_[n].oof[:,1] for n in s.members_]))
    s2 = StackEnsemble(CLF, cv=3, second_layer=[('lr', LogisticRegression()), ('tree', DecisionTreeClassifier(max_depth=2))]).fit(X, y)
    assert [n for n,_ in s2.second_layer_] == ['lr', 'tree'] and s2.predict_proba(X[:5]).shape == (5, 2)

def test_bad_input(penguins, oofs):
    X, y, _, _ = penguins
    with pytest.raises(ConfigError): BlendEnsemble([('a', Ridge()), ('a', Ridge())]).fit(X, y)
    with pytest.raises(ConfigError): BlendEnsemble([('lr', LogisticRegression()), ('r', Ridge())]).fit(X, y)
    with pytest.raises(ConfigError): BlendEnsemble([]).fit(X, y)
    y_miss = y.astype(object).copy(); y_miss[5] = None
    with pytest.raises(TargetError) as e: BlendEnsemble(CLF).fit(X, y_miss)
    assert e.value.row == 5
    with pytest.raises(DataError): BlendEnsemble(CLF).fit(X.iloc[:10], y)
    res, yy = oofs
    holed = {n: r for n,r in res.items()}
    r = holed['lr']; holed['lr'] = type(r)(**{**r.__dict__, 'oof': np.where(np.arange(len(yy))[:,None] == 7, np.nan, r.oof)})
    with pytest.raises(DataError) as e: GreedyEnsemble.from_results(holed, yy)
    assert e.value.column == 'lr' and e.value.row == 7
    with pytest.raises(ConfigError): GreedyEnsemble.from_results(res, yy, init_best_n=0)
    with pytest.raises(ConfigError): GreedyEnsemble.from_results(res, yy, metric='rmse')
    with pytest.raises(DataError) as e: StackEnsemble.from_results(res, yy, X=X.assign(island='x'), passthrough=True)
    assert e.value.column == 'island'
    with pytest.raises(ConfigError): StackEnsemble.from_results(res, yy, passthrough=True)  # no X to pass through
    failing = [('lr', LogisticRegression()), ('broken', LogisticRegression(C=-1.0))]
    with pytest.raises(DataError) as e: BlendEnsemble(failing, cv=3).fit(X, y)  # a member whose folds all fail
    assert e.value.column == 'broken'
    with pytest.raises(NotFittedError): BlendEnsemble(CLF).predict(X)

def test_bagging_and_boosting_factories(cars):
    X, y, _, _ = cars
    from sklearn.preprocessing import StandardScaler
    base = Pipeline([('preprocess', StandardScaler()), ('model', DecisionTreeRegressor(random_state=0))])
    bag = make_bagging(base, n_estimators=5)
    assert bag.named_steps['model'].estimator.random_state == 0 and 'model__estimator__max_depth' in bag.get_params()
    assert bag.fit(X, y).predict(X[:3]).shape == (3,)
    gb = make_boosting(Pipeline([('preprocess', StandardScaler()), ('model', Ridge())]), 'gradient', n_estimators=10)
    assert type(gb.named_steps['model']).__name__ == 'GradientBoostingRegressor' and gb.fit(X, y).predict(X[:2]).shape == (2,)
    ada = make_boosting(DecisionTreeClassifier(max_depth=1), 'adaboost', n_estimators=5)
    assert type(ada).__name__ == 'AdaBoostClassifier'
    with pytest.raises(ConfigError): make_boosting(KNeighborsClassifier(), 'adaboost')
    with pytest.raises(ConfigError): make_boosting(base, 'xgb')
