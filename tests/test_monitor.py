"""Monitoring: windows and late-label performance on a real store (SQLite and PostgreSQL), bad input, recording, the
report, explanation drift, and the /monitor page in a real browser."""
from __future__ import annotations
import shutil, socket, threading, time
import numpy as np, pandas as pd
import pytest
from threadpoolctl import threadpool_limits
from assembly_line.core import ConfigError
from assembly_line.datasets import load_example
from assembly_line.schema import infer_schema
from assembly_line.store import Store
from assembly_line import reference as rf, drift as dr, report as rp, monitor as mon


@pytest.fixture(scope='module')
def cars():
    df = load_example('cars').drop(columns=['Name'])
    return df, infer_schema(df, target='Miles_per_Gallon')


def test_drift_rule_is_recorded(cars, sqlite_url):
    df, schema = cars
    ref = rf.make_reference(df, schema)
    d = dr.drift(ref, df.assign(Weight_in_lbs=df.Weight_in_lbs * 1.15), model='cars', version=1,
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
    rep = rp.MonitoringReport.from_store(store, 'cars', 1)
    assert [a['column'] for a in rep.alerts if a['kind'] == 'data_drift'] == ['Weight_in_lbs']
    assert 'Wasserstein' in rep.alerts[-1]['message']


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
    ref = rf.make_reference(df, line.schema_, predictions=line.predict_proba(df))
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
    d = dr.drift(ref, wins[0].frame(ref), model='adult', version=1, window_start=wins[0].start, window_end=wins[0].end)
    n = mon.record(store, d, perf)
    got = store.monitoring_results('adult', 1)
    assert n == len(got) and set(got.kind) == {'table_drift', 'data_drift', 'prediction_drift', 'performance'}
    psi = got[(got.kind == 'data_drift') & (got.method == 'psi')]
    assert psi.threshold.eq(0.2).all() and psi.bins.notna().all() and psi.drifted.notna().all()
    with pytest.raises(ConfigError, match='no model'): mon.record(store, dr.drift(ref, new))
    rep = rp.MonitoringReport.from_store(store, 'adult', 1)
    assert len(rep.performance) == 4 and len(rep.psi.columns) == 1


def test_monitor_empty_log_is_a_clear_result(adult_line, sqlite_url):
    line, df = adult_line
    store = Store(sqlite_url)
    ref = rf.make_reference(df, line.schema_)
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
    ref = rf.make_reference(df, line.schema_, predictions=line.predict_proba(df))
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
    rep = rp.MonitoringReport('m', rows)
    with warnings.catch_warnings():
        warnings.simplefilter('error')               # any warning, the legend's included, fails the test
        fig = rep.figures()['Performance over time']
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ['window with too few labels']
    assert any('no window has enough labels' in t.get_text() for t in ax.texts)
    assert '<svg' in rep.to_html() or 'data:image' in rep.to_html()
