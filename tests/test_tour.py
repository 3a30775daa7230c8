"""The tour (`assembly-line tour`, nbs/pipeline/tour.ipynb) on a small sample, end to end through the command line; its pages
opened in headless Chromium: each shows at least one plot that is not blank, nothing is fetched from the network, and the
/monitor page's alerts are the drift of the replayed rows, computed here again from what was sent."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from assembly_line.line import AssemblyLine
from assembly_line.reference import read_reference, prediction_frame
from assembly_line.drift import drift

# Small enough for CI (about a minute on two cores): 4,000 bookings, one model family, no tuning, few resamples; deterministic
# fits, so that a loaded machine changes neither the models nor what the policy sees.
SMALL = dict(rows=4000, time_budget=8, include='hist_gb', tune='False', deterministic='True', n_jobs=1, n_boot=100,
             importance_repeats=1, consecutive=2)
PAGES = {'evaluation.html': 'Evaluation', 'model_card.html': 'Model card', 'monitor.html': 'Monitoring: hotel'}


@pytest.fixture(scope='module')
def tour(tmp_path_factory):
    "Run the tour through the command line; (run folder, run record results, stdout, stderr)."
    out = tmp_path_factory.mktemp('tour')/'run'
    exe = shutil.which('assembly-line', path=str(Path(sys.executable).parent)) or shutil.which('assembly-line')
    if exe is None: pytest.skip("the assembly-line command is not installed (pip install -e .)")
    argv = [exe, 'tour', '--out-dir', str(out)] + [a for k, v in SMALL.items() for a in ('-p', k, str(v))]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:])
    results = json.loads((out/'run_record.json').read_text())['results']
    return out, results, p.stdout, p.stderr


def test_tour_runs_the_whole_loop(tour):
    out, res, stdout, stderr = tour
    for page in ('evaluation.html', 'model_card.html', 'monitor.html', 'audit.html', 'index.html'):
        assert (out/page).stat().st_size > 0 and str(out/page) in stdout, page
    # progress: one line per stage while it runs; and no kernel warning about unencrypted TCP anywhere
    for st in ('load', 'fit', 'evaluate', 'register', 'serve', 'replay', 'monitor', 'rollback', 'pages', 'stop'):
        assert re.search(rf"^\[tour +\d+ s\] {st}\b", stdout, re.M), st
    assert 'of the budget left' in stdout
    assert 'over TCP' not in stdout + stderr
    # the loop: served by v1, the policy fired, a challenger was compared and promoted, the rollback brought v1 back
    replay = pd.read_csv(out/'replay.csv')
    assert len(replay) == res['replay_rows'] and replay.request_id.is_unique
    assert replay.version.iloc[0] == 1 and set(replay.version) <= {1, 2} and replay.version.is_monotonic_increasing
    assert res['challenger'] == 2 and res['serving_after_rollback'] == 1 and res['server_stopped']
    log = pd.read_csv(out/'audit.csv')
    audit = log.action.tolist()
    order = ['policy_fired', 'retrain_started', 'challenger_registered', 'challenger_compared']
    assert all(a in audit for a in order), audit
    assert [audit.index(a) for a in order] == sorted(audit.index(a) for a in order)
    last = log.iloc[-1]                                           # the rollback, through the admin route: the champion alias back to v1
    assert (last.action, last.actor, last.version) == ('set_alias', 'api', 1) and 'rollback from v2' in last.details
    assert res['predictions_logged'] == len(replay) + 1          # + the one request after the rollback
    assert not list(out.glob('**/.staging-*'))


def _expected_drift(out, res):
    "The drift of the last monitoring window of v1's traffic, from the rows the tour sent (not from the service's log)."
    replay = pd.read_csv(out/'replay.csv')
    ws = json.loads((out/'run_manifest.json').read_text())['params']['window_size']
    v1 = replay[replay.version == 1].reset_index(drop=True)
    last = v1.iloc[(len(v1) - 1)//ws*ws:]
    bundle = Path(res['champion_bundle'])
    ref, line = read_reference(bundle), AssemblyLine.load(bundle)
    X = last[line.schema_.features]
    frame = pd.concat([X.reset_index(drop=True), prediction_frame(line.predict_proba(X), ref.task, ref.classes).reset_index(drop=True)], axis=1)
    return drift(ref, frame)


def test_pages_render_their_plots_in_headless_chromium(tour):
    chrome, driver_path = shutil.which('chromium'), shutil.which('chromedriver')
    if not (chrome and driver_path): pytest.skip("headless browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    pytest.importorskip('selenium', reason='pip install selenium')
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    out, res, _, _ = tour
    shots = out/'screenshots'; shots.mkdir(exist_ok=True)
    opts = webdriver.ChromeOptions(); opts.binary_location = chrome
    for a in ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
              '--no-first-run', '--window-size=1200,2000', f'--user-data-dir={out/"chrome"}']: opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    # a plot is "not blank" when its pixels, drawn on a canvas, take more than one colour (data: URIs do not taint it)
    distinct = """const im = arguments[0]; if (!im.complete || !im.naturalWidth) return 0;
        const c = document.createElement('canvas'); c.width = im.naturalWidth; c.height = im.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(im, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
        const seen = new Set(); for (let i = 0; i < d.length && seen.size < 50; i += 4 * 97) seen.add(d[i] << 16 | d[i+1] << 8 | d[i+2]);
        return seen.size;"""
    try:
        drv.set_page_load_timeout(60)
        alerts = None
        for page, title in PAGES.items():
            drv.get((out/page).resolve().as_uri())
            assert title in drv.title or title in drv.page_source[:5000], (page, drv.title)
            imgs = drv.find_elements('tag name', 'img')
            colours = [drv.execute_script(distinct, i) for i in imgs]
            assert any(c > 1 for c in colours), (page, colours)
            assert all(i.get_attribute('src').startswith('data:image/') for i in imgs), page      # inline, nothing to fetch
            fetched = drv.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
            assert [u for u in fetched if not u.startswith('data:')] == [], (page, fetched)
            drv.save_screenshot(str(shots/f"{Path(page).stem}.png"))
            if page == 'monitor.html': alerts = [e.text for e in drv.find_elements('css selector', '#alerts li.alert')]
    finally: drv.quit()
    for page in PAGES: assert (shots/f"{Path(page).stem}.png").stat().st_size > 0
    # the page's alerts name exactly the columns that drifted in the last window of the replay
    d = _expected_drift(out, res)
    shown = {m.group(1) for a in alerts for m in [re.match(r'data drift in (\S+):', a)] if m}
    assert d.drifted_columns, "the replay's last window should hold real drift"
    assert shown == set(d.drifted_columns), (shown, d.drifted_columns)
    assert any(a.startswith('table drift') for a in alerts) == d.drifted
    assert any(a.startswith('prediction drift') for a in alerts) == d.prediction_drifted
