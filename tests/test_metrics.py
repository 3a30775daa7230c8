"Every registered metric against scikit-learn's own function on real-data predictions; bad input; contracts."
import pickle
import numpy as np, pandas as pd, pytest
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler, label_binarize
from sklearn.svm import SVC

from assembly_line.core import TaskKind, ConfigError, DataError, NotFittedError
from assembly_line.datasets import load_example
from assembly_line.metrics import (METRICS, Metric, model_scores, get_metric, default_metric,
                                   labels_from_scores)


@pytest.fixture(scope='module')
def binary():
    df = load_example('titanic')
    X, y = df[['pclass', 'age', 'sibsp', 'parch', 'fare']].fillna(30), df.survived
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.4, random_state=1, stratify=y)
    m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(Xtr, ytr)
    return m, Xte, yte.to_numpy()


@pytest.fixture(scope='module')
def multi():
    df = load_example('penguins').dropna()
    X, y = df[['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g']], df.species
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, random_state=2, stratify=y)
    # a weak model on two features, so label metrics are not all 1.0
    m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(Xtr[['body_mass_g', 'bill_depth_mm']], ytr)
    return m, Xte[['body_mass_g', 'bill_depth_mm']], yte.to_numpy()


@pytest.fixture(scope='module')
def regression():
    df = load_example('cars').dropna()
    X, y = df[['Cylinders', 'Displacement', 'Horsepower', 'Weight_in_lbs', 'Acceleration']], df.Miles_per_Gallon
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    m = HistGradientBoostingRegressor(max_iter=50, random_state=0).fit(Xtr, ytr)
    return m, Xte, yte.to_numpy()


def _expected_clf(name, y, P, classes):
    "What scikit-learn says, computed the obvious way from labels / probabilities."
    pred = classes[P.argmax(1)]
    binary = len(classes) == 2
    pos = classes[1]
    base = name.rsplit('_', 1)
    if name == 'accuracy': return skm.accuracy_score(y, pred)
    if name == 'balanced_accuracy': return skm.balanced_accuracy_score(y, pred)
    if name == 'mcc': return skm.matthews_corrcoef(y, pred)
    if name in ('precision', 'recall', 'f1') or base[0] in ('precision', 'recall', 'f1'):
        fn = dict(precision=skm.precision_score, recall=skm.recall_score, f1=skm.f1_score)[base[0] if len(base) == 2 and base[1] in ('binary', 'macro', 'weighted') else name]
        avg = base[1] if len(base) == 2 and base[1] in ('binary', 'macro', 'weighted') else ('binary' if binary else 'macro')
        kw = dict(pos_label=pos) if avg == 'binary' else {}
        return fn(y, pred, average=avg, zero_division=0.0, **kw)
    if name == 'roc_auc':
        return skm.roc_auc_score(y == pos, P[:, 1]) if binary else skm.roc_auc_score(y, P, multi_class='ovr', labels=classes)
    if name == 'pr_auc':
        return (skm.average_precision_score(y == pos, P[:, 1]) if binary
                else skm.average_precision_score(label_binarize(y, classes=classes), P, average='macro'))
    if name == 'log_loss': return skm.log_loss(y, P, labels=classes)
    raise KeyError(name)


REG_SK = dict(rmse=lambda y, p: np.sqrt(skm.mean_squared_error(y, p)), mae=skm.mean_absolute_error,
              r2=skm.r2_score, mape=skm.mean_absolute_percentage_error)


def test_registry_names():
    must = {'accuracy', 'balanced_accuracy', 'roc_auc', 'pr_auc', 'log_loss', 'mcc', 'rmse', 'mae', 'r2', 'mape', 'f1'}
    must |= {f'{m}_{a}' for m in ('precision', 'recall', 'f1') for a in ('binary', 'macro', 'weighted')}
    assert must <= set(METRICS)
    for n, m in METRICS.items():
        assert m.name == n and isinstance(m.greater_is_better, bool) and m.tasks


@pytest.mark.parametrize('name', [n for n, m in METRICS.items() if TaskKind.BINARY in m.tasks])
def test_binary_metrics_match_sklearn(binary, name):
    m, X, y = binary
    P = model_scores(m, X, 'binary')
    got = get_metric(name, 'binary')(y, P, m.classes_)
    assert got == pytest.approx(_expected_clf(name, y, P, m.classes_), rel=1e-12, abs=1e-12)
    assert 0 < abs(got) < 10


@pytest.mark.parametrize('name', [n for n, m in METRICS.items() if TaskKind.MULTICLASS in m.tasks])
def test_multiclass_metrics_match_sklearn(multi, name):
    m, X, y = multi
    P = model_scores(m, X, 'multiclass')
    assert P.shape == (len(y), 3)
    got = get_metric(name, 'multiclass')(y, P, m.classes_)
    assert got == pytest.approx(_expected_clf(name, y, P, m.classes_), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize('name', ['rmse', 'mae', 'r2', 'mape'])
def test_regression_metrics_match_sklearn(regression, name):
    m, X, y = regression
    p = model_scores(m, X, 'regression')
    assert p.shape == (len(y),)
    assert get_metric(name, 'regression')(y, p) == pytest.approx(REG_SK[name](y, p), rel=1e-12)


def test_loss_direction(binary, regression):
    m, X, y = binary
    P = model_scores(m, X, 'binary')
    for met in METRICS.values():
        if TaskKind.BINARY not in met.tasks: continue
        v = met(y, P, m.classes_)
        assert met.loss(y, P, m.classes_) == (-v if met.greater_is_better else v)
    perfect = np.column_stack([y == 0, y == 1]).astype(float)
    for n in ('accuracy', 'roc_auc', 'log_loss', 'f1'):
        assert METRICS[n].loss(y, perfect, m.classes_) <= METRICS[n].loss(y, P, m.classes_)
    rm, rX, ry = regression
    assert METRICS['r2'].loss(ry, ry) == -1.0 and METRICS['rmse'].loss(ry, ry) == 0.0
    assert METRICS['rmse'].is_better(1.0, 2.0) and METRICS['r2'].is_better(0.9, 0.5)


def test_defaults_and_lookup():
    assert default_metric('binary').name == 'roc_auc'
    assert default_metric('multiclass').name == 'log_loss'
    assert default_metric('regression').name == 'rmse'
    assert get_metric(None, 'regression') is METRICS['rmse']
    assert get_metric(METRICS['mae'], 'regression') is METRICS['mae']
    assert get_metric(' F1 ', 'multiclass').name == 'f1'
    with pytest.raises(ConfigError, match='unknown metric') as e: get_metric('accuracyy')
    assert 'accuracy' in str(e.value) and 'rmse' in e.value.expected
    with pytest.raises(ConfigError, match='does not fit a regression task'): get_metric('roc_auc', 'regression')
    with pytest.raises(ConfigError, match='does not fit a multiclass task'): get_metric('recall_binary', 'multiclass')
    with pytest.raises(ConfigError): get_metric()
    with pytest.raises(ConfigError, match='unknown task'): get_metric('rmse', 'ranking')


def test_model_scores_fallback_and_pipeline(binary, multi):
    m, X, y = binary
    r = RidgeClassifier().fit(X, y)
    P = model_scores(r, X, 'binary')
    assert P.shape == (len(X), 2) and set(np.unique(P)) <= {0.0, 1.0}
    np.testing.assert_array_equal(labels_from_scores(P, r.classes_), r.predict(X))
    mm, mX, my = multi
    s = make_pipeline(StandardScaler(), SVC()).fit(mX, my)
    P = model_scores(s, mX, 'multiclass')
    np.testing.assert_array_equal(P.sum(1), 1.0)
    np.testing.assert_array_equal(labels_from_scores(P, s.classes_), s.predict(mX))
    with pytest.raises(NotFittedError): model_scores(clone(m), X, 'binary')
    with pytest.raises(ConfigError, match='binary'): model_scores(mm, mX, 'binary')


def test_bad_input(binary, regression):
    m, X, y = binary
    P = model_scores(m, X, 'binary')
    auc = METRICS['roc_auc']
    with pytest.raises(DataError, match='different numbers of rows'): auc(y[:-1], P, m.classes_)
    Pn = P.copy(); Pn[7, 0] = np.nan
    with pytest.raises(DataError, match='NaN') as e: auc(y, Pn, m.classes_)
    assert e.value.row == 7
    with pytest.raises(DataError, match='one column per class'): auc(y, np.column_stack([P, P]), m.classes_)
    with pytest.raises(DataError, match='not among the classes'): auc(np.where(y == 1, 2, y), P, m.classes_)
    with pytest.raises(DataError, match='missing'): METRICS['accuracy'](pd.Series(y).astype(float).where(y > 0), P, m.classes_)
    with pytest.raises(DataError, match='one class|cannot be computed'): auc(np.zeros(len(y), int), P, m.classes_)
    rm, rX, ry = regression
    with pytest.raises(DataError, match='one column'): METRICS['rmse'](ry, np.column_stack([ry, ry]))
    with pytest.raises(DataError, match='numeric'): METRICS['mae'](np.array(['a'] * len(ry)), ry)
    with pytest.raises(DataError, match='no rows'): METRICS['mae']([], [])
    # a ConfigError is also a ValueError, a DataError is an AssemblyLineError
    assert issubclass(ConfigError, ValueError)


def test_binary_1d_scores_and_labels(binary):
    m, X, y = binary
    P = model_scores(m, X, 'binary')
    for n in ('roc_auc', 'log_loss', 'accuracy'):
        assert METRICS[n](y, P[:, 1], m.classes_) == pytest.approx(METRICS[n](y, P, m.classes_))
    np.testing.assert_array_equal(labels_from_scores(P[:, 1], m.classes_), m.predict(X))


def test_classes_default_and_missing_class(multi):
    m, X, y = multi
    P = model_scores(m, X, 'multiclass')
    assert METRICS['log_loss'](y, P) == METRICS['log_loss'](y, P, m.classes_)
    keep = y != m.classes_[2]  # holdout lacking a class: the model's classes must be passed
    with pytest.raises(DataError, match='pass `classes`'): METRICS['log_loss'](y[keep], P[keep])
    assert np.isfinite(METRICS['log_loss'](y[keep], P[keep], m.classes_))


def test_metric_pickles_and_scorer(multi):
    m, X, y = multi
    met = pickle.loads(pickle.dumps(METRICS['f1_weighted']))
    P = model_scores(m, X, 'multiclass')
    assert met(y, P, m.classes_) == METRICS['f1_weighted'](y, P, m.classes_)
    sc = pickle.loads(pickle.dumps(METRICS['log_loss'].scorer('multiclass')))
    assert sc(m, X, y) == pytest.approx(-METRICS['log_loss'](y, P, m.classes_))


@pytest.mark.parametrize('name', sorted(n for n, m in METRICS.items() if TaskKind.REGRESSION not in m.tasks))
def test_classification_metrics_whatever_the_labels_type(name):
    "Labels read back from a store or JSON (integers in an object array, numpy/python mixes) score as the plain labels do."
    rng = np.random.default_rng(0)
    for k in (2, 3):
        y = rng.integers(0, k, 200)
        s = rng.dirichlet(np.ones(k), 200); s[np.arange(200), y] += 0.3; s /= s.sum(1, keepdims=True)
        m = METRICS[name]
        if k > 2 and TaskKind.MULTICLASS not in m.tasks: continue
        want = m(y, s, np.arange(k))
        assert m(y.astype(object), s, np.arange(k)) == want
        assert m(np.array([int(v) for v in y], dtype=object), s, np.array(list(range(k)), dtype=object)) == want
        names = np.array(['a', 'b', 'c'][:k], dtype=object)
        assert m(names[y], s, names) == want
