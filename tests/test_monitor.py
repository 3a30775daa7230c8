"""Monitoring: reference round trips (JSON, bundle), drift statistics against scipy, windows and late-label
performance on a real store (SQLite and PostgreSQL), bad input, recording, and the /monitor page in a real browser."""
from __future__ import annotations
import json, shutil, socket, threading, time, tempfile
import numpy as np, pandas as pd
import pytest
from threadpoolctl import threadpool_limits
from assembly_line.core import ConfigError, DataError, IntegrityError
from assembly_line.datasets import load_example
from assembly_line.schema import infer_schema
from assembly_line.store import Store
from assembly_line import monitor as mon


@pytest.fixture(scope='module')
def cars():
    df = load_example('cars').drop(columns=['Name'])
    return df, infer_schema(df, target='Miles_per_Gallon')


def test_reference_json_round_trip_is_exact(cars):
    df, schema = cars
    ref = mon.make_reference(df, schema, n_bins=5, predictions=df['Miles_per_Gallon'])
    back = mon.Reference.from_json(ref.to_json())
    assert back == ref and back.to_json() == ref.to_json()
    assert back.columns['Horsepower'].edges == ref.columns['Horsepower'].edges  # floats bit-exact
    assert set(ref.outputs) == {'prediction'} and ref.task == 'regression'
    assert 'Year' not in ref.columns  # datetime role left out
    with pytest.raises(DataError, match='not valid JSON'): mon.Reference.from_json('{')


def test_reference_bad_input(cars):
    df, schema = cars
    with pytest.raises(DataError): mon.make_reference(df.iloc[:0], schema)
    with pytest.raises(DataError, match='missing'): mon.make_reference(df.drop(columns=['Horsepower']), schema)
    with pytest.raises(ConfigError): mon.make_reference(df, schema, n_bins=1)
    with pytest.raises(DataError, match='differ in length'): mon.make_reference(df, schema, predictions=np.zeros(3))


def test_reference_in_bundle(adult_line, adult_bundle, tmp_path):
    line, df = adult_line
    b = shutil.copytree(adult_bundle, tmp_path/'b')
    ref = mon.make_reference(df, line.schema_, predictions=line.predict_proba(df))
    mon.write_reference(b, ref)
    import dataclasses
    assert mon.read_reference(b) == dataclasses.replace(ref, created='')   # the bundle's copy carries no creation time (deterministic hash)
    from assembly_line.bundle import verify_bundle
    assert 'reference.json' in verify_bundle(b)['files']
    (b/'reference.json').write_text(ref.to_json().replace('"n_bins": 10', '"n_bins": 11'))
    with pytest.raises(IntegrityError): mon.read_reference(b)
    with pytest.raises(IntegrityError, match='no monitoring reference'): mon.read_reference(adult_bundle)


def test_drift_statistics_match_scipy():
    from scipy.stats import ks_2samp, chi2_contingency
    from scipy.spatial.distance import jensenshannon
    rng = np.random.default_rng(0)
    ref_df = pd.DataFrame(dict(x=rng.normal(size=4000), c=rng.choice(['a', 'b', 'c'], 4000, p=[.5, .3, .2])))
    cur = pd.DataFrame(dict(x=rng.normal(0.2, 1, size=3000), c=rng.choice(['a', 'b', 'c', 'z'], 3000, p=[.4, .3, .2, .1])))
    cur.loc[::50, 'x'] = np.nan
    ref = mon.make_reference(ref_df, infer_schema(ref_df), sample=4000)
    res = mon.drift(ref, cur)
    t = res.table.set_index(['column', 'method'])
    ks = ks_2samp(ref_df.x, cur.x.dropna(), method='asymp')
    assert t.loc[('x', 'ks'), 'statistic'] == pytest.approx(ks.statistic, abs=1e-12)
    assert t.loc[('x', 'ks'), 'p_value'] == pytest.approx(ks.pvalue, rel=1e-6)
    # chi2 and JS on level counts: a, b, c, __other__ (z), __missing__ (empty both sides → dropped for chi2)
    rc = ref_df.c.value_counts().reindex(['a', 'b', 'c']).to_numpy()
    cc = cur.c.value_counts().reindex(['a', 'b', 'c', 'z']).to_numpy()
    tab = np.vstack([np.r_[rc, 0], cc])
    assert t.loc[('c', 'chi2'), 'statistic'] == pytest.approx(chi2_contingency(tab, correction=False).statistic, rel=1e-9)
    assert t.loc[('c', 'js'), 'statistic'] == pytest.approx(jensenshannon(np.r_[rc, 0] / rc.sum(), cc / cc.sum(), base=2), rel=1e-9)
    # PSI with the documented smoothing
    r, c = np.maximum(np.r_[rc, 0, 0] / 4000, 1e-4), np.maximum(np.r_[cc, 0] / 3000, 1e-4)
    assert t.loc[('c', 'psi'), 'statistic'] == pytest.approx(np.sum((c - r) * np.log(c / r)), rel=1e-9)
    assert t.loc[('x', 'psi'), 'n_cur'] == 3000 and sum(t.loc[('x', 'psi'), 'cur_shares']) == pytest.approx(1, abs=1e-5)
    assert res.columns.loc['c', 'drifted'] and 'c' in res.drifted_columns


def test_drift_thresholds_and_decide(cars):
    df, schema = cars
    ref = mon.make_reference(df, schema)
    cur = df.assign(Weight_in_lbs=df.Weight_in_lbs * 1.15)
    assert mon.drift(ref, cur).drifted_columns == ['Weight_in_lbs']
    assert mon.drift(ref, cur, threshold=dict(wasserstein=50.)).drifted_columns == []   # an effect floor no shift reaches
    assert mon.drift(ref, cur, threshold=50.).drifted_columns == ['Weight_in_lbs']      # a float is PSI's, which no longer decides
    assert mon.drift(ref, cur, threshold=50., decide=('psi',)).drifted_columns == []    # ... unless asked to
    assert 'Weight_in_lbs' in mon.drift(ref, cur, decide=('ks',)).drifted_columns
    assert mon.drift(ref, cur, table_threshold=0.1).drifted
    with pytest.raises(DataError, match='DataFrame'): mon.drift(ref, [1, 2])
    with pytest.raises(ConfigError, match='correction'): mon.drift(ref, cur, correction='sidak')
    with pytest.raises(ConfigError, match='needs these methods') as e: mon.drift(ref, cur, methods=('psi', 'ks'))
    assert 'wasserstein' in e.value.value
    with pytest.raises(ConfigError, match='decide'): mon.drift(ref, cur, decide=('js', 'energy'))
    with pytest.raises(ConfigError, match='unknown drift method'): mon.drift(ref, cur, threshold=dict(wassertein=0.2))


def test_holm_and_bh_corrections():
    from scipy.stats import false_discovery_control
    rng = np.random.default_rng(3)
    p = rng.random(40) ** 3
    holm = mon._adjust(p, 'holm')
    # Holm by its definition: the i-th smallest p times (m - i + 1), made monotone, capped at 1
    o = np.argsort(p); ref = np.minimum(1, np.maximum.accumulate((40 - np.arange(40)) * p[o]))
    assert np.allclose(holm[o], ref) and (holm >= p).all()
    assert np.allclose(mon._adjust(p, 'bh'), false_discovery_control(p))
    assert np.array_equal(mon._adjust(p, 'none'), p)


def _known_changes(seed=0):
    "Hotel bookings at random: a 60,000-row reference, the unchanged rest, and the rest with five known changes."
    num = ['lead_time', 'adr', 'stays_in_week_nights', 'stays_in_weekend_nights', 'arrival_date_week_number', 'booking_changes',
           'total_of_special_requests', 'agent', 'adults', 'days_in_waiting_list']
    cat = ['market_segment', 'meal', 'hotel', 'country', 'distribution_channel', 'customer_type', 'deposit_type', 'reserved_room_type']
    h = load_example('hotel_bookings')[num + cat]
    rng = np.random.default_rng(seed)
    h = h.iloc[rng.permutation(len(h))].reset_index(drop=True)
    for c in ('stays_in_week_nights', 'total_of_special_requests'): h[c] = h[c].astype(float).mask(rng.random(len(h)) < 0.02)
    ref, same = h.iloc[:60_000].reset_index(drop=True), h.iloc[60_000:].reset_index(drop=True)
    cur = same.copy()
    cur['lead_time'] = cur.lead_time + round(0.3 * ref.lead_time.std())
    cur['adr'] = ref.adr.mean() + (cur.adr - ref.adr.mean()) * np.sqrt(2)
    cur['stays_in_week_nights'] = cur.stays_in_week_nights.mask(rng.random(len(cur)) < 0.29)
    cur['market_segment'] = cur.market_segment.mask(rng.random(len(cur)) < 0.2, 'Metaverse')
    cur.loc[(cur.meal == 'BB') & (rng.random(len(cur)) < 0.3), 'meal'] = 'HB'
    return mon.make_reference(ref, infer_schema(ref, roles={c: 'numeric' for c in num})), same, cur


KNOWN = ['adr', 'lead_time', 'market_segment', 'meal', 'stays_in_week_nights']

def test_known_changes_are_flagged_and_nothing_else():
    ref, same, cur = _known_changes()
    big = mon.drift(ref, cur.iloc[:50_000])
    assert sorted(big.drifted_columns) == KNOWN
    assert mon.drift(ref, same.iloc[:50_000]).drifted_columns == []
    for i in (0, 5000, 40_000):                                  # 5,000-row windows: no false flag, every change
        assert mon.drift(ref, same.iloc[i:i + 5000]).drifted_columns == []
        assert sorted(mon.drift(ref, cur.iloc[i:i + 5000]).drifted_columns) == KNOWN
    c = big.columns
    # what each change looks like: the effect the rule uses is ~0.3 for the mean shift and the doubled variance
    assert 0.25 < c.loc['lead_time', 'effect'] < 0.35 and 0.25 < c.loc['adr', 'effect'] < 0.4
    assert c.loc['adr', 'psi'] < 0.2                              # the old PSI-only rule missed it
    t = big.table.set_index(['column', 'method'])
    assert t.loc[('stays_in_week_nights', 'missing'), 'statistic'] > 0.8 and t.loc[('stays_in_week_nights', 'missing'), 'drifted']
    assert not t.loc[('stays_in_week_nights', 'ks'), 'drifted']    # the values left are unchanged: missingness decides
    assert not t.loc[('total_of_special_requests', 'missing'), 'drifted']   # 2% missing in both
    # the old rule, kept as an option, misses the doubled variance
    assert 'adr' not in mon.drift(ref, cur.iloc[:50_000], decide=('psi', 'js')).drifted_columns


def test_drift_rule_is_recorded(cars, sqlite_url):
    df, schema = cars
    ref = mon.make_reference(df, schema)
    d = mon.drift(ref, df.assign(Weight_in_lbs=df.Weight_in_lbs * 1.15), model='cars', version=1,
                  window_start=pd.Timestamp('2024-01-01', tz='UTC'), window_end=pd.Timestamp('2024-01-02', tz='UTC'))
    assert d.rule['correction'] == 'holm' and d.rule['n_rows'] == len(df) and d.rule['thresholds']['wasserstein'] == 0.1
    assert d.rule['family'] == int(d.table.method.isin(['ks', 'missing', 'chi2']).sum())
    recs = d.records()
    tb = [r for r in recs if r['kind'] == 'table_drift'][0]
    assert tb['details']['rule']['decide'] == 'rule' and tb['details']['drifted_columns'] == ['Weight_in_lbs']
    rule = {r['column']: r for r in recs if r['method'] == 'rule'}
    assert set(rule) == set(ref.columns) and rule['Weight_in_lbs']['drifted'] and not rule['Horsepower']['drifted']
    assert rule['Weight_in_lbs']['threshold'] == 0.1 and 'Wasserstein' in rule['Weight_in_lbs']['details']['reason']
    ks = [r for r in recs if r['method'] == 'ks' and r['column'] == 'Weight_in_lbs'][0]
    assert ks['details']['p_adjusted'] >= ks['details']['p_value'] and ks['details']['n_sample'] == df.Weight_in_lbs.notna().sum()
    store = Store(sqlite_url)
    assert mon.record(store, d) == len(recs)
    rep = mon.MonitoringReport.from_store(store, 'cars', 1)
    assert [a['column'] for a in rep.alerts if a['kind'] == 'data_drift'] == ['Weight_in_lbs']
    assert 'Wasserstein' in rep.alerts[-1]['message']


def test_prediction_and_missing_drift_follow_the_rule():
    rng = np.random.default_rng(1)
    n = 20_000
    train = pd.DataFrame(dict(x=rng.normal(size=n), k=rng.choice(list('abc'), n)))
    proba = pd.DataFrame({'no': 1 - (p := rng.beta(2, 5, n)), 'yes': p})
    ref = mon.make_reference(train, infer_schema(train), predictions=proba)
    ref.task, ref.classes = 'binary', ['no', 'yes']
    cur = pd.DataFrame(dict(x=rng.normal(size=5000), k=rng.choice(list('abc'), 5000)))
    pq = rng.beta(2, 5, 5000)
    same = mon.drift(ref, pd.concat([cur, mon.prediction_frame(pd.DataFrame({'no': 1 - pq, 'yes': pq}), 'binary', ['no', 'yes'])], axis=1))
    assert same.drifted_columns == [] and not same.prediction_drifted
    pq = rng.beta(3, 5, 5000)                                     # the model says "yes" more often
    moved = mon.drift(ref, pd.concat([cur.assign(x=cur.x.mask(rng.random(5000) < 0.1)),   # 0% → 10% missing
                                      mon.prediction_frame(pd.DataFrame({'no': 1 - pq, 'yes': pq}), 'binary', ['no', 'yes'])], axis=1))
    assert moved.prediction_drifted and moved.columns.loc['proba_yes', 'drifted']
    assert moved.drifted_columns == ['x'] and moved.columns.loc['x', 'fired'] == 'psi, missing'
    # a 40-row window of a real change that is too small to be significant is not flagged, and says why
    tiny = mon.drift(ref, cur.iloc[:40].assign(x=cur.x.iloc[:40] + 0.3))
    assert tiny.drifted_columns == [] and 'KS p_adj' in tiny.columns.loc['x', 'reason']


def test_numbers_logged_as_text_match_their_levels():
    df = pd.DataFrame(dict(k=[1, 2, 3] * 100, y=np.arange(300.)))
    ref = mon.make_reference(df, infer_schema(df, roles={'k': 'categorical'}))
    res = mon.drift(ref, df.assign(k=df.k.astype(str)))
    assert res.table.query("column == 'k' and method == 'psi'").statistic.item() == pytest.approx(0, abs=1e-9)


def _log(store, line, df, start='2024-01-01', freq='1h', model='adult', version=1):
    X = df.drop(columns=['income'])
    p = line.predict_proba(X)
    classes = list(p.columns)
    rows = pd.DataFrame(dict(model=model, version=version, ts=pd.date_range(start, periods=len(df), freq=freq, tz='UTC'),
                             inputs=X.to_dict('records'),
                             outputs=[dict(prediction=classes[int(np.argmax(r))], proba=dict(zip(classes, r))) for r in p.to_numpy()]))
    return store.log_predictions(rows)


def test_windows_performance_and_record(adult_line, store_url):
    line, df = adult_line
    store = Store(store_url)
    ref = mon.make_reference(df, line.schema_, predictions=line.predict_proba(df))
    new = load_example('adult', n=600, seed=7)
    with threadpool_limits(1): ids = _log(store, line, new)          # 600 hourly predictions: 25 days
    labelled = new.income.str.strip().to_numpy()
    res = store.add_labels(dict(zip(ids[:400], labelled[:400])), classes=line.classes_)
    assert res.ok
    # bad labels: unknown id, duplicate, wrong class → refused, nothing logged changes
    bad = store.add_labels({'nope': labelled[0], ids[0]: labelled[0], ids[500]: 'maybe'}, classes=line.classes_)
    assert bad.unknown == ['nope'] and bad.duplicate == [ids[0]] and bad.invalid[0]['request_id'] == ids[500]
    assert store.count_predictions('adult') == 600
    w = mon.monitor_window(store, 'adult', 1, last=100)
    assert w.n == 100 and set(ref.outputs) <= set(w.frame(ref).columns)
    wins = mon.monitor_windows(store, 'adult', 1, freq='7D')
    assert sum(x.n for x in wins) == 600 and len(wins) == 4
    assert [x.n for x in mon.monitor_windows(store, 'adult', 1, size=250)] == [250, 250, 100]
    with pytest.raises(ConfigError): mon.monitor_windows(store, 'adult', 1)
    perf = mon.performance(store, 'adult', 1, 'roc_auc', wins, ref, min_labels=50, n_boot=200)
    f = perf.frame
    assert list(f.n_labelled) == [168, 168, 64, 0] and list(f.status) == ['ok', 'ok', 'ok', 'no_labels']
    assert ((f.low <= f.estimate) & (f.estimate <= f.high))[:3].all() and f.estimate[:3].between(0.6, 1).all()
    small = mon.performance(store, 'adult', 1, 'roc_auc', wins, ref, min_labels=100, n_boot=200).frame
    assert small.status[2] == 'too_few_labels' and np.isnan(small.estimate[2])
    empty = mon.performance(store, 'adult', 1, windows=[('2030-01-01', '2030-02-01')], reference=ref).frame
    assert empty.status.item() == 'empty'
    d = mon.drift(ref, wins[0].frame(ref), model='adult', version=1, window_start=wins[0].start, window_end=wins[0].end)
    n = mon.record(store, d, perf)
    got = store.monitoring_results('adult', 1)
    assert n == len(got) and set(got.kind) == {'table_drift', 'data_drift', 'prediction_drift', 'performance'}
    psi = got[(got.kind == 'data_drift') & (got.method == 'psi')]
    assert psi.threshold.eq(0.2).all() and psi.bins.notna().all() and psi.drifted.notna().all()
    with pytest.raises(ConfigError, match='no model'): mon.record(store, mon.drift(ref, new))
    rep = mon.MonitoringReport.from_store(store, 'adult', 1)
    assert len(rep.performance) == 4 and len(rep.psi.columns) == 1


def test_monitor_empty_log_is_a_clear_result(adult_line, sqlite_url):
    line, df = adult_line
    store = Store(sqlite_url)
    ref = mon.make_reference(df, line.schema_)
    rep = mon.monitor(store, 'nothing', ref, freq='7D')
    assert rep.alerts == [] and len(rep.rows) == 0
    html = rep.to_html()
    assert 'No monitoring results recorded yet' in html and '<img' not in html


# ---------------------------------------------------------------- the page in a real browser

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.mark.browser
@pytest.mark.slow
def test_monitor_page_in_headless_chromium(adult_line, sqlite_url, tmp_path):
    chrome, driver_path = shutil.which('chromium'), shutil.which('chromedriver')
    if not (chrome and driver_path): pytest.skip("headless browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    selenium = pytest.importorskip('selenium', reason='pip install selenium')
    import uvicorn, httpx
    from fastapi import FastAPI
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    line, df = adult_line
    store = Store(sqlite_url)
    ref = mon.make_reference(df, line.schema_, predictions=line.predict_proba(df))
    new = load_example('adult', n=400, seed=3)
    new['age'] = new['age'] + 15                                           # a drift the page must show
    with threadpool_limits(1): ids = _log(store, line, new, freq='30min')
    app = FastAPI(); app.include_router(mon.monitor_router(sqlite_url, model='adult', reference=ref, freq='1D', min_labels=20))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=port, log_level='warning'))
    th = threading.Thread(target=server.run, daemon=True); th.start()
    try:
        for _ in range(100):
            if server.started: break
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(f"{base}/labels", json=dict(labels=[dict(request_id=i, label=l) for i, l in zip(ids[:300], new.income.str.strip()[:300])]))
        assert r.status_code == 200 and len(r.json()['accepted']) == 300
        r = httpx.post(f"{base}/labels", json=dict(labels={'unknown-id': '>50K', ids[0]: '<=50K'}))
        assert r.status_code == 422 and r.json()['unknown'] == ['unknown-id'] and r.json()['duplicate'] == [ids[0]]
        assert httpx.post(f"{base}/labels", json=dict(labels=[])).status_code == 422
        opts = webdriver.ChromeOptions(); opts.binary_location = chrome
        for a in ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
                  '--no-first-run', f'--user-data-dir={tmp_path/"chrome"}']: opts.add_argument(a)
        drv = webdriver.Chrome(service=Service(driver_path), options=opts)
        try:
            drv.set_page_load_timeout(60)
            drv.get(f"{base}/monitor")
            assert drv.title.startswith('Monitoring: adult')
            imgs = drv.find_elements('tag name', 'img')
            assert len(imgs) == 3
            widths = [drv.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) for i in imgs]
            assert all(w and w > 0 for w in widths), widths
            alerts = [e.text for e in drv.find_elements('css selector', '#alerts li.alert')]
            assert any('data drift in age' in a for a in alerts), alerts
            drv.save_screenshot(str(tmp_path/'monitor.png'))
        finally: drv.quit()
    finally:
        server.should_exit = True; th.join(10)


# ------------------------------------------------------------------------------------------- explanation drift

def test_explanation_drift_from_a_real_store(sqlite_url):
    "A column pushed to an extreme in the second window takes a larger share of the model's importance there."
    from assembly_line.line import AssemblyLine
    df = load_example('adult', n=1500, seed=3)
    with threadpool_limits(1):
        line = AssemblyLine('income', time_budget=10, seed=0, include=['hist_gb'], tune=False, deterministic=True, n_jobs=1).fit(df.iloc[:900])
    store = Store(sqlite_url)
    normal, pushed = df.iloc[900:1200], df.iloc[1200:1500].assign(**{'capital-gain': 15024})
    _log(store, line, normal, start='2024-01-01', freq='1min', model='adult-x')
    _log(store, line, pushed, start='2024-01-02', freq='1min', model='adult-x')
    ed = mon.explanation_drift(store, 'adult-x', line, freq='D', max_rows=150)
    sh = ed.shares
    assert sh.shape == (len(line.schema_.features), 2)
    assert np.allclose(sh.sum(0), 1)
    assert sh.loc['capital-gain'].iloc[1] > sh.loc['capital-gain'].iloc[0] + 0.1, sh
    assert ed.change.iloc[0] == 0 and ed.change.iloc[1] > 0.1
    assert set(ed.table.n_explained) == {150} and set(ed.table.n) == {300}
    page = mon.monitor_page(store, 'adult-x', line=lambda: line, freq='D')
    assert 'id="explanation-drift"' in page and 'capital-gain' in page
    # a line with a non-tree member: the page leaves explanation drift out and says why
    with threadpool_limits(1):
        lin = AssemblyLine('income', time_budget=5, seed=0, include=['linear'], tune=False, deterministic=True, n_jobs=1).fit(df.iloc[:400])
    with pytest.raises(ConfigError, match='not a tree'): mon.explanation_drift(store, 'adult-x', lin, freq='D', tree_only=True)
    assert 'Explanation drift: not shown' in mon.monitor_page(store, 'adult-x', line=lin, freq='D')
    # an empty log: no windows, an empty result
    assert len(mon.explanation_drift(store, 'nobody', line).table) == 0


def test_performance_plot_without_labelled_windows_draws_no_empty_legend():
    "Windows with too few labels only: the plot says so and matplotlib gives no 'No artists with labels' warning."
    import warnings
    t0 = pd.Timestamp('2024-01-01', tz='UTC')
    rows = pd.DataFrame([dict(kind='performance', column='', method='roc_auc', statistic=np.nan, threshold=np.nan, drifted=None,
                              window_start=t0 + pd.Timedelta(days=7*i), window_end=t0 + pd.Timedelta(days=7*(i+1)),
                              details=dict(low=np.nan, high=np.nan, n_labelled=3, status='too_few_labels')) for i in range(3)])
    rep = mon.MonitoringReport('m', rows)
    with warnings.catch_warnings():
        warnings.simplefilter('error')               # any warning, the legend's included, fails the test
        fig = rep.figures()['Performance over time']
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ['window with too few labels']
    assert any('no window has enough labels' in t.get_text() for t in ax.texts)
    assert '<svg' in rep.to_html() or 'data:image' in rep.to_html()
