"Evaluation: CV scores, bootstrap CIs, leaderboard ordering, plots and the HTML report on real data."
import re
from types import SimpleNamespace
import numpy as np, pandas as pd, pytest
from threadpoolctl import threadpool_limits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from assembly_line.core import ConfigError, DataError
from assembly_line.datasets import load_example
from assembly_line.metrics import METRICS, model_scores
from assembly_line.evaluation import cv_scores, bootstrap_ci, Leaderboard, ConfidenceInterval, CVScores
from assembly_line.diagnostics import (plot_confusion_matrix, plot_roc, plot_pr, plot_calibration, plot_residuals,
                                      permutation_importances, plot_importance, evaluation_report, EvaluationReport)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    with threadpool_limits(1): yield


@pytest.fixture(scope='module')
def titanic():
    df = load_example('titanic')
    X = df[['pclass', 'age', 'sibsp', 'parch', 'fare']].fillna(30)
    Xtr, Xte, ytr, yte = train_test_split(X, df.survived, test_size=0.4, random_state=0, stratify=df.survived)
    m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(Xtr, ytr)
    return m, Xtr, ytr, Xte, yte


@pytest.fixture(scope='module')
def cars():
    df = load_example('cars').dropna()
    X = df[['Cylinders', 'Displacement', 'Horsepower', 'Weight_in_lbs', 'Acceleration']]
    Xtr, Xte, ytr, yte = train_test_split(X, df.Miles_per_Gallon, test_size=0.3, random_state=0)
    return make_pipeline(StandardScaler(), Ridge()).fit(Xtr, ytr), Xtr, ytr, Xte, yte


def _oof(est, X, y, folds, method):
    return cross_val_predict(est, X, y, cv=folds, method=method)


def test_cv_scores_per_fold_and_pooled(titanic):
    m, Xtr, ytr, _, _ = titanic
    folds = list(StratifiedKFold(4, shuffle=True, random_state=0).split(Xtr, ytr))
    oof = _oof(m, Xtr, ytr, folds, 'predict_proba')
    r = cv_scores(oof, ytr, 'log_loss', folds=folds, classes=m.classes_, name='lr')
    exp = [METRICS['log_loss'](ytr.iloc[v], oof[v], m.classes_) for _, v in folds]
    np.testing.assert_allclose(r.fold_scores, exp)
    assert r.mean == pytest.approx(np.mean(exp)) and r.std == pytest.approx(np.std(exp, ddof=1))
    assert r.pooled == pytest.approx(METRICS['log_loss'](ytr, oof, m.classes_))
    assert r.greater_is_better is False and r.model == 'lr'
    # validation index arrays alone are accepted too
    assert cv_scores(oof, ytr, 'log_loss', folds=[v for _, v in folds], classes=m.classes_).mean == pytest.approx(r.mean)
    # duck-typed CVResult, with an unfinished fold (NaN rows) skipped and counted
    gap = oof.copy(); gap[folds[1][1]] = np.nan
    res = SimpleNamespace(oof=gap, fold_indices=folds, classes=m.classes_, name='gappy')
    g = cv_scores(res, ytr)  # default metric of a binary task
    assert g.metric == 'roc_auc' and g.n_folds == 3 and g.skipped_folds == 1 and g.model == 'gappy'
    with pytest.raises(DataError, match='no fold'): cv_scores(np.full_like(oof, np.nan), ytr, folds=folds, classes=m.classes_)
    with pytest.raises(DataError, match='different numbers of rows'): cv_scores(oof[:-1], ytr, folds=folds, classes=m.classes_)


def test_cv_scores_regression(cars):
    m, Xtr, ytr, _, _ = cars
    folds = list(KFold(5, shuffle=True, random_state=0).split(Xtr))
    r = cv_scores(_oof(m, Xtr, ytr, folds, 'predict'), ytr, folds=folds)
    assert r.metric == 'rmse' and r.n_folds == 5 and 2 < r.mean < 6


@pytest.mark.parametrize('metric', ['roc_auc', 'accuracy', 'log_loss', 'f1', 'pr_auc'])
def test_bootstrap_ci_contains_estimate_and_matches_loop(titanic, metric):
    m, _, _, Xte, yte = titanic
    P = model_scores(m, Xte, 'binary')
    ci = bootstrap_ci(yte, P, metric, n_boot=300, classes=m.classes_)
    assert isinstance(ci, ConfidenceInterval) and ci.n_rows == len(yte) and ci.n_boot == 300
    assert ci.estimate == pytest.approx(METRICS[metric](yte, P, m.classes_))
    assert ci.low < ci.estimate < ci.high and ci.contains(ci.estimate)
    loop = bootstrap_ci(yte, P, metric, n_boot=300, classes=m.classes_, vectorised=False)
    assert (ci.low, ci.high) == pytest.approx((loop.low, loop.high), rel=1e-9)


@pytest.mark.parametrize('metric', ['rmse', 'mae', 'r2', 'mape'])
def test_bootstrap_regression_vectorised_equals_loop(cars, metric):
    m, _, _, Xte, yte = cars
    p = model_scores(m, Xte, 'regression')
    v = bootstrap_ci(yte, p, metric, n_boot=200, seed=3)
    l = bootstrap_ci(yte, p, metric, n_boot=200, seed=3, vectorised=False)
    assert (v.low, v.high) == pytest.approx((l.low, l.high), rel=1e-9)
    assert v.contains(v.estimate)


def test_bootstrap_narrower_with_more_rows_and_level(titanic):
    m, _, _, Xte, yte = titanic
    P = model_scores(m, Xte, 'binary')
    full = bootstrap_ci(yte, P, 'accuracy', n_boot=500, classes=m.classes_)
    few = bootstrap_ci(yte[:80], P[:80], 'accuracy', n_boot=500, classes=m.classes_)
    assert few.width > full.width
    assert bootstrap_ci(yte, P, 'accuracy', n_boot=500, alpha=0.5, classes=m.classes_).width < full.width
    # reproducible with a seed, different with another
    assert bootstrap_ci(yte, P, 'roc_auc', n_boot=100, classes=m.classes_).low == \
        bootstrap_ci(yte, P, 'roc_auc', n_boot=100, classes=m.classes_).low
    assert bootstrap_ci(yte, P, 'roc_auc', n_boot=100, seed=1, classes=m.classes_).low != \
        bootstrap_ci(yte, P, 'roc_auc', n_boot=100, seed=2, classes=m.classes_).low


def test_bootstrap_coverage_on_real_population(cars):
    "The 90% interval of MAE on a 60-row sample covers the MAE on all rows most of the time."
    m, X, y, Xte, yte = cars
    Xall, yall = pd.concat([X, Xte]), pd.concat([y, yte])
    pall = model_scores(m, Xall, 'regression')
    truth = METRICS['mae'](yall, pall)
    rng = np.random.default_rng(0)
    hits = 0
    for k in range(60):
        i = rng.choice(len(yall), 60, replace=False)
        hits += bootstrap_ci(yall.iloc[i], pall[i], 'mae', n_boot=300, alpha=0.1, seed=k).contains(truth)
    assert 0.75 <= hits / 60 <= 1.0


def test_bootstrap_bad_input(titanic):
    m, _, _, Xte, yte = titanic
    P = model_scores(m, Xte, 'binary')
    with pytest.raises(ConfigError, match='alpha'): bootstrap_ci(yte, P, 'roc_auc', alpha=1.5)
    with pytest.raises(ConfigError, match='n_boot'): bootstrap_ci(yte, P, 'roc_auc', n_boot=3)
    with pytest.raises(ConfigError, match='unknown metric'): bootstrap_ci(yte, P, 'aucc')
    P2 = P.copy(); P2[0, 0] = np.nan
    with pytest.raises(DataError, match='NaN'): bootstrap_ci(yte, P2, 'roc_auc', classes=m.classes_)
    # 8 rows, one positive: AUC undefined on the resamples without it (about a third), which are counted
    y8 = np.array([0] * 7 + [1]); P8 = np.column_stack([1 - np.linspace(.1, .8, 8), np.linspace(.1, .8, 8)])
    ci = bootstrap_ci(y8, P8, 'roc_auc', n_boot=300)
    assert 0.2 < ci.n_failed / 300 < 0.5 and ci.estimate == 1.0
    # one row per class: one-vs-rest AUC undefined on most resamples
    y3 = np.array(['a', 'b', 'c']); P3 = np.array([[.6, .2, .2], [.2, .6, .2], [.2, .2, .6]])
    with pytest.raises(DataError, match='most bootstrap'): bootstrap_ci(y3, P3, 'roc_auc', n_boot=200)


def _lb_rows(metric, values):
    lb = Leaderboard.new(metric)
    for i, v in enumerate(values):
        cv = CVScores(f'm{i}', metric, np.array([v - .01, v, v + .01]), v, METRICS[metric].greater_is_better)
        lb = lb.add(f'm{i}', cv, holdout=v, fit_time=i + 1., predict_ms_per_1k=2. * i)
    return lb


def test_leaderboard_orders_by_metric_direction():
    vals = [0.7, 0.9, 0.8]
    up = _lb_rows('roc_auc', vals)
    assert list(up.model) == ['m1', 'm2', 'm0'] and up.best == 'm1'
    down = _lb_rows('rmse', vals)
    assert list(down.model) == ['m0', 'm2', 'm1'] and down.best == 'm0'
    assert isinstance(up, Leaderboard) and up.metric_name == 'roc_auc' and not down.greater_is_better
    # filtering keeps the class and metadata
    sub = up[up.cv_mean > 0.75]
    assert isinstance(sub, Leaderboard) and sub.metric_name == 'roc_auc' and len(sub) == 2
    # an ensemble row with only a holdout score sorts after CV-scored rows
    e = up.add('ens', holdout=0.99, kind='ensemble')
    assert e.model.iloc[-1] == 'ens' and len(up) == 3
    with pytest.raises(ConfigError, match='already has'): up.add('m0')
    with pytest.raises(ConfigError, match='another metric'):
        up.add('x', CVScores('x', 'rmse', np.array([1., 2.]), 1.5, False))
    with pytest.raises(DataError, match='empty'): Leaderboard.new('r2').best


def test_leaderboard_prints_its_rows():
    # pandas prints "Empty <class>" whenever `.empty` is truthy: a leaderboard must keep DataFrame's property
    lb = _lb_rows('roc_auc', [0.7])
    assert lb.empty is False and Leaderboard.new('r2').empty is True
    assert 'Empty' not in repr(lb) and 'm0' in repr(lb) and 'm0' in lb.to_string()


def test_leaderboard_display():
    lb = _lb_rows('log_loss', [0.5, 0.3])
    md = lb._repr_markdown_()
    assert md.splitlines()[0].startswith('| rank | model') and 'log_loss ↓' in md
    assert re.search(r'\| 1 \| m1 \|.*0\.3000 ± 0\.0100', md)
    assert '<table' in lb._repr_html_() and 'predict ms / 1k rows' in lb._repr_html_()
    assert lb.cv_mean.dtype == float  # numbers stay numbers


def test_leaderboard_from_results(titanic):
    m, Xtr, ytr, Xte, yte = titanic
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(Xtr, ytr))
    results, hold = {}, {}
    for name, est in [('logistic', m), ('forest', RandomForestClassifier(50, min_samples_leaf=3, random_state=0))]:
        est.fit(Xtr, ytr)
        results[name] = SimpleNamespace(oof=_oof(est, Xtr, ytr, folds, 'predict_proba'), fold_indices=folds,
                                        classes=est.classes_, fit_time=[.1, .2, .3], predict_time=0.004, name=name)
        hold[name] = model_scores(est, Xte, 'binary')
    lb = Leaderboard.from_results(results, ytr, 'roc_auc', holdout=hold, y_holdout=yte, n_boot=100)
    assert set(lb.model) == {'logistic', 'forest'} and lb.cv_mean.is_monotonic_decreasing
    r = lb.set_index('model').loc['forest']
    assert r.fit_time_s == pytest.approx(.6) and r.predict_ms_per_1k == pytest.approx(4.)
    assert r.holdout_low < r.holdout < r.holdout_high
    with pytest.raises(ConfigError, match='y_holdout'): Leaderboard.from_results(results, ytr, holdout=hold)


def test_leaderboard_from_training_cross_fit():
    training = pytest.importorskip('assembly_line.training')
    df = load_example('penguins').dropna()
    X, y = df[['bill_length_mm', 'bill_depth_mm']], df.species
    res = {'lr': training.cross_fit(make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)), X, y, 3,
                                    'multiclass', name='lr')}
    lb = Leaderboard.from_results(res, y, 'accuracy')
    assert lb.model.iloc[0] == 'lr' and 0.8 < lb.cv_mean.iloc[0] <= 1 and lb.n_folds.iloc[0] == 3


def test_plots_draw(titanic, cars):
    m, _, _, Xte, yte = titanic
    P = model_scores(m, Xte, 'binary')
    for f in (plot_confusion_matrix, plot_roc, plot_pr, plot_calibration):
        fig = f(yte, P, m.classes_)
        assert fig.axes and (fig.axes[0].lines or fig.axes[0].images)
    cm = plot_confusion_matrix(yte, P, m.classes_, normalize=None).axes[0].images[0].get_array()
    assert cm.sum() == len(yte)
    rm, _, _, rXte, ryte = cars
    assert len(plot_residuals(ryte, model_scores(rm, rXte, 'regression')).axes) == 2
    with pytest.raises(DataError): plot_roc(yte, P[:, :1], m.classes_)


def test_permutation_importance_finds_the_signal(cars):
    m, _, _, Xte, yte = cars
    imp = permutation_importances(m, Xte, yte, 'regression', 'mae', n_repeats=3)
    assert list(imp.columns) == ['feature', 'importance', 'std'] and set(imp.feature) == set(Xte.columns)
    assert imp.importance.iloc[0] > 0 and imp.importance.is_monotonic_decreasing
    assert len(plot_importance(imp).axes[0].patches) == len(Xte.columns)


def test_report_written_with_plots(titanic, tmp_path):
    m, _, _, Xte, yte = titanic
    lb = _lb_rows('roc_auc', [0.7, 0.8])
    rep = evaluation_report(m, Xte, yte, 'binary', 'roc_auc', lb, name='titanic lr', n_boot=100,
                            importance_repeats=2, path=tmp_path / 'out' / 'report.html')
    assert isinstance(rep, EvaluationReport) and rep.path.exists()
    page = rep.path.read_text()
    assert page.startswith('<!DOCTYPE html>') and 'titanic lr' in page
    imgs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(imgs) == 5 and all(len(b) > 1000 for b in imgs)
    assert set(rep.figures) == {'Confusion matrix', 'ROC curve', 'Precision-recall curve', 'Calibration',
                                'Permutation importance'}
    assert 'http' not in page.replace('http-equiv', '')  # self-contained: nothing fetched
    assert list(rep.scores)[0] == 'roc_auc' and 'Leaderboard' in page
    assert rep._repr_html_().count('<img') == 5 and '| metric |' in rep._repr_markdown_()
    sf = rep.scores_frame()
    assert (sf.low <= sf.estimate).all() and (sf.estimate <= sf.high).all()


def test_report_multiclass_and_bad_input(tmp_path):
    df = load_example('penguins').dropna()
    X, y = df[['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm']], df.species
    m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    rep = evaluation_report(m, X, y, 'multiclass', n_boot=50, importance=False)
    assert rep.metric == 'log_loss' and 'Permutation importance' not in rep.figures and len(rep.figures) == 4
    assert rep.path is None
    with pytest.raises(DataError, match='empty'): evaluation_report(m, X.iloc[:0], y.iloc[:0], 'multiclass')
    with pytest.raises(ConfigError, match='does not fit'): evaluation_report(m, X, y, 'multiclass', 'rmse')
