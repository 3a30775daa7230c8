"Confidence-based performance estimation: interval coverage on simulated data with known probabilities, bad input, persistence."
import json
import numpy as np, pandas as pd, pytest
from sklearn.metrics import roc_auc_score, f1_score, accuracy_score
from assembly_line.core import ConfigError, DataError, IntegrityError, NotFittedError
from assembly_line.calibration import fit_calibration_maps, calibrate_matrix, calibration_error
from assembly_line.estimate import (ESTIMABLE, ESTIMATOR_FILE, PerformanceEstimator, EstimateResult, proba_matrix, label_codes,
                                    reference_scores, expected_metrics, simulated_metrics, realised_metrics, fit_estimator,
                                    write_estimator, read_estimator, random_effects)

W = np.array([[1.5, -1.0, 0.5], [0.3, 1.2, -0.8], [0.0, 0.5, 1.0]])

def _draw(rng, n, k=2, shift=0., distort=0.6):
    "Rows with known class probabilities `T`, labels drawn from them, and a miscalibrated model output `P` of the same ranking."
    x = rng.normal(shift, 1, (n, 3))
    z = x @ W[:, :k] if k > 2 else np.column_stack([np.zeros(n), x @ W[:, 0]])
    T = np.exp(z - z.max(axis=1, keepdims=True)); T /= T.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(T, axis=1)[:, :-1]).sum(axis=1)
    P = T ** distort; P /= P.sum(axis=1, keepdims=True)
    return T, P, y

def _coverage(k, seeds, calibration, distort, shift=0.5, n_ref=2000, n_win=500):
    cov = {m: [] for m in ESTIMABLE}
    for s in seeds:
        rng = np.random.default_rng(s)
        _, Pr, yr = _draw(rng, n_ref, k, distort=distort)
        _, Pw, yw = _draw(rng, n_win, k, shift=shift, distort=distort)
        est = PerformanceEstimator(calibration=calibration, n_boot=30, n_sim=500, seed=12345).fit(Pr, yr)   # not the data's seed
        for r in est.estimate(Pw, yw):
            assert r['status'] == 'ok' and r['low'] <= r['estimate'] <= r['high'], r
            cov[r['metric']].append(r['covered'])
    return {m: float(np.mean(v)) for m, v in cov.items()}

def test_interval_covers_the_true_metric_with_calibrated_probabilities():
    "Model output that is the true probability: the 95% interval holds the realised metric in >= 90% of 100 seeds, for every metric."
    cov = _coverage(2, range(100), 'none', distort=1.0, n_ref=1000, n_win=300)
    assert min(cov.values()) >= 0.9, cov

@pytest.mark.slow
def test_interval_covers_after_isotonic_calibration_under_input_drift():
    "Miscalibrated output (a power of the true probabilities), inputs shifted by 0.5 sd: calibration makes the estimate honest."
    cov = _coverage(2, range(100), 'auto', distort=0.6, n_ref=1500, n_win=400)
    assert min(cov.values()) >= 0.9, cov

@pytest.mark.slow
def test_interval_covers_multiclass():
    cov = _coverage(3, range(60), 'auto', distort=0.6, n_ref=1500, n_win=400)
    assert min(cov.values()) >= 0.9, cov

def _wobbling(rng, n_chunks, rows, sd):
    "Stretches of rows whose labels follow the model's logit with a slope and an offset of their own (a known concept wobble, sd `sd`)."
    P, y = [], []
    for _ in range(n_chunks):
        z = rng.normal(0, 1.5, rows)
        a, b = (1 + rng.normal(0, sd), rng.normal(0, sd)) if sd else (1., 0.)
        y.append((rng.random(rows) < 1 / (1 + np.exp(-(a * z + b)))).astype(int))
        P.append(1 / (1 + np.exp(-z)))
    return P, y

def _window_rows(est, Pw, yw):
    rows = pd.DataFrame([r for p, y in zip(Pw, yw) for r in est.estimate(p, y)])
    return {m: (t.covered.astype(bool).mean(), ((t.high - t.low) / 2).mean()) for m, t in rows.groupby('metric')}

def test_random_effects_finds_a_known_bias_and_spread():
    rng = np.random.default_rng(1)
    v = rng.uniform(0.5, 2, 300) * 1e-4
    fit = random_effects(0.02 + rng.normal(0, 0.03, 300) + rng.normal(0, np.sqrt(v)), v)
    assert abs(fit['bias'] - 0.02) < 0.005 and abs(fit['tau'] - 0.03) < 0.005 and fit['df'] == 298, fit
    none = random_effects(rng.normal(0, np.sqrt(v)), v)
    assert none['tau'] < 0.005 and abs(none['bias']) < 3 * none['bias_se'], none
    with pytest.raises(DataError, match='at least 3 chunks'): random_effects([0., np.nan, 0.1], [1e-4, 1e-4, 1e-4])

def _with_and_without_error_model(Pr, yr):
    "The same reference fitted twice: with the error model of reference chunks, and sampling error only (`n_chunks=0`)."
    P, y = np.concatenate(Pr), np.concatenate(yr)
    return (PerformanceEstimator(n_boot=20, n_sim=300, seed=0).fit(P, y),
            PerformanceEstimator(n_boot=20, n_sim=300, seed=0, n_chunks=0).fit(P, y))

def test_interval_widens_when_reference_stretches_show_estimation_error():
    "Reference stretches whose outcome relation wobbles (known, sd 0.3): the error model learns tau and its intervals hold later windows with the same wobble; the sampling interval alone does not."
    rng = np.random.default_rng(0)
    Pr, yr = _wobbling(rng, 20, 200, 0.3); Pw, yw = _wobbling(rng, 30, 300, 0.3)
    est, bare = _with_and_without_error_model(Pr, yr)
    assert bare.error_ == {} and min(e['tau'] for e in est.error_.values()) > 0.02, est.error_
    withe, without = _window_rows(est, Pw, yw), _window_rows(bare, Pw, yw)
    for m in ESTIMABLE:
        assert withe[m][0] >= 0.85 and without[m][0] <= 0.75, (m, withe, without)
        assert withe[m][1] > 1.5 * without[m][1], (m, withe, without)

def test_steady_reference_keeps_the_sampling_interval():
    "No wobble: tau comes out near zero and the interval stays close to the sampling interval (the error model is not a blanket widening)."
    rng = np.random.default_rng(2)
    Pr, yr = _wobbling(rng, 20, 200, 0.); Pw, yw = _wobbling(rng, 30, 300, 0.)
    est, bare = _with_and_without_error_model(Pr, yr)
    assert max(e['tau'] for e in est.error_.values()) < 0.01, est.error_
    withe, without = _window_rows(est, Pw, yw), _window_rows(bare, Pw, yw)
    for m in ESTIMABLE: assert withe[m][0] >= 0.9 and withe[m][1] < 1.25 * without[m][1], (m, withe, without)

def test_uncalibrated_probabilities_give_a_wrong_estimate():
    "The same miscalibrated output used as it is: the estimate misses, so calibration is what makes it right (the tests can fail)."
    rng = np.random.default_rng(0)
    _, Pr, yr = _draw(rng, 3000, distort=0.4); _, Pw, yw = _draw(rng, 3000, distort=0.4)
    raw = PerformanceEstimator(calibration='none', n_chunks=0).fit(Pr, yr).estimate(Pw, yw)
    cal = PerformanceEstimator(calibration='isotonic').fit(Pr, yr).estimate(Pw, yw)
    acc = lambda rows: next(r for r in rows if r['metric'] == 'accuracy')
    assert not acc(raw)['covered'] and acc(cal)['covered'], (acc(raw), acc(cal))

def test_simulated_metrics_match_sklearn():
    "The vectorised realised metrics are sklearn's: labels certain of themselves reproduce accuracy, AUC and F1 exactly."
    rng = np.random.default_rng(3)
    for k in (2, 3):
        T, P, y = _draw(rng, 400, k)
        sims = simulated_metrics(P, [np.eye(k)[y]], n_sim=100)
        pred = P.argmax(axis=1)
        want = dict(accuracy=accuracy_score(y, pred),
                    roc_auc=roc_auc_score(y, P[:, 1]) if k == 2 else roc_auc_score(y, P, multi_class='ovr', average='macro'),
                    f1=f1_score(y, pred) if k == 2 else f1_score(y, pred, average='macro'))
        for m in ESTIMABLE:
            np.testing.assert_allclose(sims[m], want[m], atol=1e-12)
            assert realised_metrics(P, y)[m] == pytest.approx(want[m])

def test_expected_metrics_are_the_mean_of_simulated_ones():
    rng = np.random.default_rng(4)
    T, P, _ = _draw(rng, 800)
    exp, sims = expected_metrics(P, T), simulated_metrics(P, [T], n_sim=4000, seed=1)
    for m in ESTIMABLE: assert exp[m] == pytest.approx(sims[m].mean(), abs=0.004)

def test_calibration_report_and_maps():
    rng = np.random.default_rng(5)
    _, Pr, yr = _draw(rng, 3000, distort=0.5); _, Pt, yt = _draw(rng, 3000, distort=0.5)
    est = PerformanceEstimator().fit(Pr, yr)
    assert est.method_ == 'isotonic' and est.cv_ece_['isotonic_ece'] < est.cv_ece_['raw_ece']
    before, after = calibration_error(yt, Pt), calibration_error(yt, est.calibrate(Pt).to_numpy())
    assert after['ece'] < before['ece'] / 2 and after['brier'] < before['brier']
    assert est.plot_calibration().axes[0].get_title().startswith('Calibration on 3,000 reference rows')
    _, Pc, yc = _draw(rng, 3000, distort=1.0)            # calibrated already: 'auto' may keep it as it is
    assert calibration_error(yc, PerformanceEstimator().fit(Pc, yc).calibrate(Pc).to_numpy())['ece'] < 0.03

def test_windows_by_time_and_by_count():
    rng = np.random.default_rng(6)
    _, Pr, yr = _draw(rng, 1500); _, Pw, yw = _draw(rng, 900)
    est = PerformanceEstimator(seed=0).fit(pd.DataFrame(Pr, columns=['no', 'yes']), np.array(['no', 'yes'])[yr])
    labels = pd.Series(np.array(['no', 'yes'])[yw], dtype=object); labels[600:] = None        # the last labels have not arrived
    t = pd.Timestamp('2024-01-01') + pd.to_timedelta(np.arange(900) * 2, unit='h')
    res = est.estimate_windows(pd.DataFrame(Pw, columns=['no', 'yes']), labels, time=t, freq='7D')
    assert isinstance(res, EstimateResult) and res.frame.window_start.nunique() == 11
    acc = res.table('accuracy')
    assert acc.realised.notna().sum() == (acc.window_start < t[600]).sum()   # windows with some labels have a realised value
    assert acc.status.iloc[-1] in ('ok', 'too_few_rows')
    by_count = est.estimate_windows(pd.DataFrame(Pw, columns=['no', 'yes']), size=300)
    assert list(by_count.table('f1').n) == [300, 300, 300] and by_count.frame.realised.isna().all()
    recs = res.records(model='m', version=1)
    assert {r['kind'] for r in recs} == {'estimated_performance'} and len(recs) == len(res.frame)
    json.dumps(recs, default=str)

def test_weekly_windows_start_on_the_asked_weekday():
    "Weeks anchored on any weekday (how the Minneapolis coverage was checked for its week start): each row in one window, each later window starting that day at midnight."
    rng = np.random.default_rng(8)
    _, Pr, yr = _draw(rng, 1200); _, Pw, yw = _draw(rng, 1000)
    est = PerformanceEstimator(seed=0, n_boot=10, n_sim=200).fit(Pr, yr)
    t = pd.Timestamp('2024-01-03 07:00') + pd.to_timedelta(np.arange(1000) * 90, unit='min')   # a Wednesday morning on
    seen = set()
    for day, num in (('SUN', 6), ('WED', 2), ('FRI', 4)):
        f = est.estimate_windows(Pw, yw, time=t, freq=f'W-{day}').table('accuracy')
        starts = pd.DatetimeIndex(f.window_start)
        assert f.n.sum() == len(Pw) and starts[0] <= t[0] < starts[1], (day, f)
        assert (starts[1:].dayofweek == num).all() and (starts[1:] == starts[1:].normalize()).all(), (day, starts)
        assert ((f.window_end - f.window_start) <= pd.Timedelta(days=7)).all()
        seen.add(tuple(f.n))
    assert len(seen) == 3                                           # the week start changes which rows share a window

def test_small_and_empty_windows_get_a_status():
    rng = np.random.default_rng(7)
    _, Pr, yr = _draw(rng, 1000)
    est = PerformanceEstimator(min_rows=50).fit(Pr, yr)
    assert {r['status'] for r in est.estimate(Pr[:10])} == {'too_few_rows'}
    assert {r['status'] for r in est.estimate(Pr[:0])} == {'empty'}

def test_bad_probabilities_are_clear_errors():
    P = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    with pytest.raises(DataError, match='no probabilities'): proba_matrix(None)
    with pytest.raises(DataError, match='sum to 1') as e: proba_matrix(np.array([[0.2, 0.8], [0.7, 0.7]]))
    assert e.value.row == 1
    with pytest.raises(DataError, match='finite') as e: proba_matrix(np.array([[0.2, 0.8], [np.nan, 1.]]))
    assert e.value.row == 1
    with pytest.raises(DataError, match='numbers'): proba_matrix(np.array([['a', 'b']]))
    with pytest.raises(DataError, match='do not match the classes') as e: proba_matrix(pd.DataFrame(P, columns=['a', 'b']), classes=['a', 'c'])
    assert e.value.expected == ['a', 'c']
    with pytest.raises(DataError, match='one column per class'): proba_matrix(P[:, :1], classes=['a', 'b'])
    np.testing.assert_allclose(proba_matrix(P[:, 1])[0], P)                    # binary 1-D: P(classes[1])

def test_mismatched_labels_are_clear_errors():
    rng = np.random.default_rng(8)
    _, Pr, yr = _draw(rng, 500)
    with pytest.raises(DataError, match='differ in length'): PerformanceEstimator().fit(Pr, yr[:-1])
    bad = yr.astype(object); bad[17] = 'maybe'
    with pytest.raises(DataError, match='not one of the model') as e: PerformanceEstimator().fit(Pr, bad)
    assert (e.value.row, e.value.value) == (17, 'maybe')
    with pytest.raises(DataError, match='never occurs'): PerformanceEstimator().fit(Pr, np.zeros(500, int))
    with pytest.raises(DataError, match='too few reference rows'): PerformanceEstimator().fit(Pr[:20], yr[:20])
    est = PerformanceEstimator().fit(Pr, yr)
    with pytest.raises(DataError, match='differ in length'): est.estimate(Pr[:100], yr[:99])
    with pytest.raises(DataError, match='not one of the model'): est.estimate(Pr[:100], np.full(100, 7))

def test_bad_configuration_and_unfitted():
    rng = np.random.default_rng(9)
    _, Pr, yr = _draw(rng, 300)
    for kw, msg in ((dict(metrics=('rmse',)), 'cannot be estimated'), (dict(calibration='beta'), 'unknown calibration'),
                    (dict(alpha=1.5), 'alpha'), (dict(n_sim=10), 'n_sim')):
        with pytest.raises(ConfigError, match=msg): PerformanceEstimator(**kw).fit(Pr, yr)
    with pytest.raises(NotFittedError): PerformanceEstimator().estimate(Pr)
    with pytest.raises(ConfigError, match='exactly one of'): PerformanceEstimator().fit(Pr, yr).estimate_windows(Pr)

def test_models_without_probabilities_are_refused():
    from sklearn.linear_model import LinearRegression
    from sklearn.svm import LinearSVC
    df = pd.DataFrame(dict(a=np.arange(100.), b=np.arange(100.) % 7, y=np.arange(100) % 2))
    reg = LinearRegression().fit(df[['a', 'b']], df.a)
    with pytest.raises(ConfigError, match='no predict_proba'): reference_scores(reg, df, 'y')
    svc = LinearSVC().fit(df[['a', 'b']], df.y)
    with pytest.raises(ConfigError, match='no predict_proba'): fit_estimator(svc, df, 'y')
    from sklearn.linear_model import LogisticRegression
    lr = LogisticRegression().fit(df[['a', 'b']], df.y)
    with pytest.raises(DataError, match='no label column'): reference_scores(lr, df.drop(columns='y'), 'y')

@pytest.mark.slow
def test_an_assembly_line_regression_is_refused_and_a_classifier_round_trips(tmp_path):
    from assembly_line.datasets import load_example
    from assembly_line.line import AssemblyLine
    cars = load_example('cars').dropna(subset=['Miles_per_Gallon'])
    kw = dict(time_budget=10, include=['linear'], tune=False, ensemble=False, deterministic=True, n_jobs=1)
    reg = AssemblyLine('Miles_per_Gallon', **kw).fit(cars.iloc[:250])
    with pytest.raises(ConfigError, match='regression model'): fit_estimator(reg, cars.iloc[250:])
    adult = load_example('adult', n=3000)
    line = AssemblyLine('income', **kw).fit(adult.iloc[:1500])
    est = fit_estimator(line, adult.iloc[1500:2500])
    assert [str(c) for c in est.classes_] == [str(c) for c in line.classes_]
    new = line.predict_proba(adult.iloc[2500:].drop(columns='income'))
    rows = est.estimate(new, line.target_of(adult.iloc[2500:]))
    assert all(r['status'] == 'ok' for r in rows) and sum(r['covered'] for r in rows) >= 2
    line.save(tmp_path/'b')
    write_estimator(tmp_path/'b', est)
    back = read_estimator(tmp_path/'b')
    assert back.estimate(new) == est.estimate(new)
    (tmp_path/'b'/ESTIMATOR_FILE).write_text(est.to_json().replace('"seed": 0', '"seed": 5'))
    with pytest.raises(IntegrityError): read_estimator(tmp_path/'b')

def test_json_round_trip_and_bad_files(tmp_path):
    rng = np.random.default_rng(10)
    _, Pr, yr = _draw(rng, 800, k=3)
    est = PerformanceEstimator(seed=2).fit(pd.DataFrame(Pr, columns=['a', 'b', 'c']), np.array(['a', 'b', 'c'])[yr], source='simulated')
    back = PerformanceEstimator.from_json(est.to_json())
    assert back.to_json() == est.to_json() and back.estimate(Pr[:200]) == est.estimate(Pr[:200])
    f = tmp_path/'e.json'; f.write_text(est.to_json())
    assert read_estimator(f).source_ == 'simulated'
    with pytest.raises(DataError, match='not a performance estimator'): PerformanceEstimator.from_json('{"format": "x"}')
    with pytest.raises(DataError, match='not valid JSON'): PerformanceEstimator.from_json('{')
    with pytest.raises(DataError, match='fit it again'): PerformanceEstimator.from_json('{"format": "assembly_line.estimator/1"}')
    with pytest.raises(DataError, match='no estimator file'): read_estimator(tmp_path/'missing.json')


def test_the_monitor_page_shows_the_estimate(adult_line, sqlite_url, tmp_path):
    "A real bundle with reference.json and estimator.json, served by the real app (uvicorn, SQLite): /monitor shows estimate beside realised."
    from servers import running   # real uvicorn in a thread (tests/servers.py)
    from assembly_line.datasets import load_example
    from assembly_line.reference import make_reference, write_reference
    from assembly_line.serve import create_app
    from assembly_line.store import Store
    line, train = adult_line
    full = load_example('adult')
    held = full.merge(train.drop_duplicates(), how='left', indicator=True)
    held = held[held._merge == 'left_only'].drop(columns='_merge').sample(2100, random_state=0).reset_index(drop=True)
    ref_rows, served = held.iloc[:1500], held.iloc[1500:].reset_index(drop=True)
    bundle = line.save(tmp_path/'adult')
    X = train.drop(columns='income')
    write_reference(bundle, make_reference(X, line.schema_, predictions=line.predict_proba(X)))
    est = fit_estimator(line, ref_rows, source='adult rows the line never saw')
    write_estimator(bundle, est)
    app = create_app(bundle, store_url=sqlite_url, log_interval=0.05)
    records = json.loads(served.drop(columns='income').to_json(orient='records'))
    with running(app) as c:
        r = c.post('/predict', json={'records': records}); assert r.status_code == 200, r.text
        ids = r.json()['request_ids']
        assert app.state.service.ingest().error is None
        assert Store(sqlite_url).count_predictions() == 600
        truth = [str(v) for v in line.target_of(served)]
        r = c.post('/labels', json={'labels': [dict(request_id=i, label=l) for i, l in zip(ids[:400], truth[:400])]})
        assert r.status_code == 200 and r.json()['ok'], r.text
        page = c.get('/monitor')
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="estimated"' in html and 'alt="Estimated vs realised performance"' in html
    want = est.estimate(line.predict_proba(served.drop(columns='income')), truth[:400] + [None] * 200)
    for row in want:
        assert row['status'] == 'ok' and row['n_labelled'] == 400
        assert f"{row['estimate']:.3f}" in html and f"{row['realised']:.3f}" in html, row


def test_recorded_estimates_rebuild_the_report_and_its_alerts(sqlite_url):
    "Estimates recorded in a real SQLite store come back in MonitoringReport.from_store, with an alert where labels contradict them."
    from assembly_line.monitor import record
    from assembly_line.report import MonitoringReport
    from assembly_line.store import Store
    rng = np.random.default_rng(11)
    T, Pr, yr = _draw(rng, 2000)
    _, Pw, yw = _draw(rng, 1200)
    flipped = yw.copy(); flip = rng.random(1200) < 0.25; flipped[600:][flip[600:]] = 1 - flipped[600:][flip[600:]]   # concept drift in the second half
    est = PerformanceEstimator(seed=0).fit(Pr, yr)
    t = pd.Timestamp('2024-01-01', tz='UTC') + pd.to_timedelta(np.arange(1200), unit='h')
    res = est.estimate_windows(Pw, flipped, time=t, freq='10D')
    store = Store(sqlite_url)
    res.model, res.version = 'sim', 1
    assert record(store, res) == len(res.frame)
    rep = MonitoringReport.from_store(store, 'sim', 1, floor=0.99)
    e = rep.estimated
    assert len(e) == len(res.frame) and set(e.metric) == set(ESTIMABLE)
    mine = res.frame.sort_values(['metric', 'window_start'], kind='stable').reset_index(drop=True)
    np.testing.assert_allclose(e.estimate.to_numpy(float), mine.estimate.to_numpy(float))
    np.testing.assert_allclose(e.realised.to_numpy(float), mine.realised.to_numpy(float))
    kinds = [(a['kind'], a['level']) for a in rep.alerts]
    assert ('estimated_performance', 'warning') in kinds, rep.alerts          # the last window's labels fall below the estimate
    assert not any(a['kind'] == 'estimated_performance' and a['level'] == 'critical' for a in rep.alerts)  # no performance rows: no floor check
    html = rep.to_html()
    assert 'id="estimated"' in html and 'Estimated vs realised performance' in html and 'concept drift or miscalibration' in html
