"""The feedback loop: policy as data, paired bootstrap, and the whole story (serve → log → late labels → drift →
retrain → compare → promote → roll back) against a real uvicorn server and a real SQLite store; bad labels and small
windows leave the log untouched."""
import json, socket, threading, time, contextlib
import numpy as np, pandas as pd
import pytest

from assembly_line.core import ConfigError, DataError, RegistryError
from assembly_line.datasets import load_example
from assembly_line.store import Store
from assembly_line.evaluation import paired_bootstrap
from assembly_line.retrain_policy import RetrainPolicy, evaluate_policy, PolicyDecision
from assembly_line.feedback import (retrain, rollback, run_feedback_once, feedback_router, FeedbackReport, deploy_shadow,
                                    evaluate_shadow)

TOKEN = 'feedback-admin-token'
POLICY = dict(drift_threshold=0.3, consecutive=2, performance_floor=400., min_labels=50, window_size=250, min_window_rows=100)

@pytest.fixture(scope='module')
def computers(): return load_example('computers')

@pytest.fixture(scope='module')
def early(computers): return computers[computers.trend <= 8].drop(columns='trend').reset_index(drop=True)

@pytest.fixture(scope='module')
def champion(early):
    from assembly_line.line import AssemblyLine
    return AssemblyLine('price', time_budget=15, include=['linear', 'hist_gb'], tune=False, seed=0, n_jobs=1, deterministic=True).fit(early)

def _registry(tmp_path, champion, early):
    from assembly_line.deploy import Registry
    from assembly_line.reference import make_reference
    reg = Registry(f"sqlite:///{tmp_path/'store.sqlite'}", root=tmp_path/'artifacts')
    X = early.drop(columns='price')
    ref = make_reference(X, champion.schema_, predictions=champion.predict(X))
    reg.register(champion, 'computers', alias='champion', card=False, extra_files={'reference.json': ref.to_json()})
    return reg

from servers import running   # real uvicorn in a thread (tests/servers.py)

def _wait_logged(store, n, timeout=20):
    t0 = time.time()
    while store.count_predictions('computers') < n:
        if time.time() - t0 > timeout: raise AssertionError(f"only {store.count_predictions('computers')} of {n} predictions logged")
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------- policy and bootstrap

def test_policy_is_data():
    p = RetrainPolicy(**POLICY)
    assert RetrainPolicy.from_json(p.to_json()) == p
    assert RetrainPolicy.from_dict(json.loads(p.to_json())) == p
    assert p.triggers == ['drift', 'performance']
    assert RetrainPolicy(drift_threshold=None, max_age_s=3600).triggers == ['schedule']
    for bad, field in [(dict(consecutive=0), 'consecutive'), (dict(min_labels=-1), 'min_labels'), (dict(eval_fraction=1.5), 'eval_fraction'),
                       (dict(drift_method='energy'), 'drift_method'), (dict(cooldown_windows=1.5), 'cooldown_windows'),
                       (dict(window_size=None), 'window_size'), (dict(consecutive=True), 'consecutive')]:
        with pytest.raises(ConfigError) as e: RetrainPolicy(**bad)
        assert e.value.column == field, bad
    with pytest.raises(ConfigError, match='unknown policy field') as e: RetrainPolicy.from_dict(dict(drift_treshold=0.2))
    assert e.value.column == 'drift_treshold'
    with pytest.raises(ConfigError, match='not valid JSON'): RetrainPolicy.from_json('{drift')

def test_paired_bootstrap(computers):
    y = computers.price.to_numpy(float)
    naive, trend = np.full(len(y), y.mean()), np.poly1d(np.polyfit(computers.trend, y, 1))(computers.trend)
    pc = paired_bootstrap(y, naive, trend, 'rmse', n_boot=300, seed=1)
    assert pc.b_better and not pc.a_better and pc.low <= pc.diff <= pc.high < 0
    assert paired_bootstrap(y, trend, naive, 'rmse', n_boot=300).a_better          # direction flips with the order
    r2 = paired_bootstrap(y, naive, trend, 'r2', n_boot=300)                       # greater is better: same verdict
    assert r2.b_better and r2.low > 0
    same = paired_bootstrap(y, trend, trend, 'mae', n_boot=100)
    assert (same.low, same.high, same.verdict) == (0., 0., 'no clear difference')
    # reproducible with a seed; the vectorised path agrees with scoring every resample by the metric itself
    assert paired_bootstrap(y[:300], naive[:300], trend[:300], 'rmse', n_boot=200, seed=3) == \
           paired_bootstrap(y[:300], naive[:300], trend[:300], 'rmse', n_boot=200, seed=3)
    rng = np.random.default_rng(3); idx = rng.integers(0, 300, size=(200, 300))
    rm = lambda s: np.sqrt(((y[:300][idx] - s[:300][idx])**2).mean(1))
    lo, hi = np.quantile(rm(trend) - rm(naive), [0.025, 0.975])
    pv = paired_bootstrap(y[:300], naive[:300], trend[:300], 'rmse', n_boot=200, seed=3)
    assert np.isclose(pv.low, lo) and np.isclose(pv.high, hi)
    # classification: probabilities of a better and a worse model of `premium`
    yb = computers.premium.to_numpy(object); good = (computers.ads.to_numpy() > 200).astype(float)
    pa = np.column_stack([np.full(len(yb), .5), np.full(len(yb), .5)]); pb = np.column_stack([1 - good*.2 - .4, good*.2 + .4])
    c = paired_bootstrap(yb, pa, pb, 'roc_auc', n_boot=100, classes=np.array(['no', 'yes'], dtype=object))
    assert c.metric == 'roc_auc' and c.greater_is_better and c.a == 0.5
    with pytest.raises(DataError, match='different numbers of rows'): paired_bootstrap(y, naive, trend[:5], 'rmse')
    with pytest.raises(ConfigError): paired_bootstrap(y, naive, trend, 'rmse', n_boot=3)
    with pytest.raises(DataError): paired_bootstrap(y, naive, np.where(np.arange(len(y)) == 7, np.nan, trend), 'rmse')


# ------------------------------------------------------------------------------------------- the story on a real server

@pytest.mark.slow
def test_story_against_the_server(tmp_path, champion, early, computers):
    from assembly_line.serve import create_app
    reg = _registry(tmp_path, champion, early)
    store = reg.store
    fb = lambda svc: feedback_router(svc, policy=POLICY, base_data=early)
    app = create_app('computers', store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05, extra_routers=[fb])
    auth = {'Authorization': f'Bearer {TOKEN}'}
    n = 0
    with running(app, timeout=120) as c:
        def serve_month(m):
            nonlocal n
            rows = computers[computers.trend == m]
            X = json.loads(rows.drop(columns=['price', 'trend']).to_json(orient='records'))
            r = c.post('/predict', json={'records': X}, headers={'X-Request-ID': f"m{m}"})
            assert r.status_code == 200, r.text
            ids = r.json()['request_ids']; n += len(ids)
            _wait_logged(store, n)
            lab = c.post('/labels', json={'labels': dict(zip(ids, rows.price.tolist())), 'source': 'sales'})
            assert lab.status_code == 200 and len(lab.json()['accepted']) == len(ids), lab.text
            return r.json()
        assert serve_month(9)['version'] == 1
        assert c.post('/admin/retrain').status_code == 401
        assert c.post('/admin/retrain', headers={'Authorization': 'Bearer wrong'}).status_code == 401
        r = c.post('/admin/retrain', headers=auth, json={})
        assert r.status_code == 200 and r.json()['decision'] == 'not_triggered', r.text
        assert any('needs 2 in a row' in b for b in r.json()['reasons'])          # one drifted window is not enough
        serve_month(10)
        r = c.post('/admin/retrain', headers=auth, json={})
        out = r.json()
        assert r.status_code == 200 and out['decision'] == 'promoted', r.text
        assert (out['champion'], out['challenger']) == (1, 2) and out['reload']['current']['version'] == 2
        cmp_ = out['comparison']
        assert cmp_['high'] < 0 and cmp_['verdict'] == 'b better' and cmp_['n'] == out['data']['eval_rows'] >= 50
        assert out['data']['base_rows'] == len(early) and out['data']['train_rows'] == len(early) + out['data']['train_new_rows']
        assert c.get('/model').json()['version'] == 2
        assert serve_month(11)['version'] == 2                                          # the promoted model serves
        assert store.get_version('computers', 2).params['time_budget'] == champion.time_budget   # the same line
        r = c.post('/admin/rollback', headers=auth, json={'why': 'test'})
        assert r.status_code == 200 and r.json()['version'] == 1, r.text
        assert c.get('/model').json()['version'] == 1
    assert rollback(reg, 'computers', to_version=2, why='forward again') == 2
    log = store.audit_log('computers')
    acts = log.action.tolist()
    order = ['policy_checked', 'policy_fired', 'retrain_started', 'challenger_registered', 'challenger_compared', 'challenger_promoted', 'rolled_back']
    pos = [acts.index(a) for a in order]
    assert pos == sorted(pos), acts
    started = log[log.action == 'retrain_started'].details.iloc[0]
    assert started['trigger']['fire'] and started['data']['train_hash'] and started['policy']['consecutive'] == 2
    assert (log[log.action == 'challenger_compared'].details.iloc[0]['verdict']) == 'b better'
    assert set(log[log.action.isin(['retrain_started', 'challenger_promoted'])].actor) == {'api'}
    h = store.alias_history('computers', 'champion')
    assert h.new_version.tolist() == [1, 2, 1, 2]
    # a second check right after the retrain is cooling down: the new champion has no windows of its own yet
    d = evaluate_policy(RetrainPolicy(**POLICY), store, 'computers')
    assert not d.fire and d.version == 2


# ------------------------------------------------------------------------------------------- bad input, small windows

@pytest.mark.slow
def test_bad_labels_and_small_windows_lose_nothing(tmp_path, champion, early, computers):
    from assembly_line.serve import create_app
    reg = _registry(tmp_path, champion, early)
    store = reg.store
    pol = RetrainPolicy(**POLICY)
    d0 = evaluate_policy(pol, store, 'computers')                                   # an empty log: a decision, not an error
    assert not d0.fire and any('no predictions logged' in b for b in d0.blockers) and d0.windows.empty
    app = create_app('computers', store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05)
    rows = computers[computers.trend == 9].iloc[:60]
    with running(app, timeout=120) as c:
        X = json.loads(rows.drop(columns=['price', 'trend']).to_json(orient='records'))
        ids = c.post('/predict', json=X, headers={'X-Request-ID': 'b'}).json()['request_ids']
        _wait_logged(store, 60)
        first = c.post('/labels', json={'labels': dict(zip(ids[:50], rows.price.tolist()[:50]))})
        assert first.status_code == 200
        before = (store.get_predictions('computers'), store.labelled_predictions('computers'))
        bad = c.post('/labels', json={'labels': [{'request_id': 'nope', 'label': 1.},                  # unknown id
                                                 {'request_id': ids[0], 'label': 999.},                # labelled already
                                                 {'request_id': ids[55], 'label': 'cheap'},            # wrong type
                                                 {'request_id': ids[56], 'label': [1, 2]},             # not a scalar
                                                 {'request_id': ids[57], 'label': 1500.},              # fine
                                                 {'request_id': ids[57], 'label': 1600.}]})            # duplicated in the batch
        assert bad.status_code == 422
        b = bad.json()
        assert b['unknown'] == ['nope'] and set(b['duplicate']) == {ids[0], ids[57]} and b['accepted'] == []   # refused whole
        assert {i['request_id'] for i in b['invalid']} == {ids[55], ids[56]}
        # the routes refuse the retrain without the token, and the default policy's window is too small here
        r = c.post('/admin/retrain', headers={'Authorization': f'Bearer {TOKEN}'}, json={'policy': POLICY})
        assert r.status_code == 200 and r.json()['decision'] == 'not_triggered'
        assert any('minimum of 100' in x for x in r.json()['reasons'])
        bad_pol = c.post('/admin/retrain', headers={'Authorization': f'Bearer {TOKEN}'}, json={'policy': {'consecutive': 0}})
        assert bad_pol.status_code == 422 and bad_pol.json()['column'] == 'consecutive'
    after_p, after_l = store.get_predictions('computers'), store.labelled_predictions('computers')
    pd.testing.assert_frame_equal(after_p, before[0])                                      # nothing logged changed
    pd.testing.assert_frame_equal(after_l[after_l.request_id != ids[57]].reset_index(drop=True), before[1])
    assert after_l.set_index('request_id').loc[ids[0], 'label'] == rows.price.iloc[0]        # first label wins
    # small or empty windows: a report saying why, no model trained or registered
    n_audit = len(store.audit_log('computers'))
    for data, why in [(None, 'at least 100'), (computers.iloc[:0], 'empty'), (rows.drop(columns='trend').iloc[:30], 'at least 100')]:
        rep = retrain(reg, 'computers', data, pol)
        assert isinstance(rep, FeedbackReport) and rep.decision == 'skipped' and why in rep.reasons[0] and rep.challenger is None
    from assembly_line.monitor import monitor_window
    rep = retrain(reg, 'computers', monitor_window(store, 'computers', start='2000-01-01', end='2000-01-02'), pol)
    assert rep.decision == 'skipped' and 'empty' in rep.reasons[0]
    assert len(reg.versions('computers')) == 1
    sk = store.audit_log('computers', action='retrain_skipped')
    assert len(sk) == 4 and len(store.audit_log('computers')) == n_audit + 4
    with pytest.raises(Exception, match='target'): retrain(reg, 'computers', rows.drop(columns=['price', 'trend']), pol)
    with pytest.raises(RegistryError): evaluate_policy(pol, store, 'no-such-model')
    with pytest.raises(ConfigError): run_feedback_once(store, 'computers@challenger', pol, registry_root=reg.root)
    rep = run_feedback_once(store, 'computers', POLICY, registry_root=reg.root)
    assert rep.decision == 'not_triggered' and isinstance(rep.policy_decision, PolicyDecision)
    assert '**' in rep._repr_markdown_() and 'no retrain' in rep.policy_decision._repr_markdown_()


# ------------------------------------------------------------------------------------------- shadow challengers

def _serve_live(c, store, computers, month, n_before):
    "Serve a month through the app (one JSON batch), wait for the log, send the late prices to /labels; return the answer."
    rows = computers[computers.trend == month]
    X = json.loads(rows.drop(columns=['price', 'trend']).to_json(orient='records'))
    r = c.post('/predict', json={'records': X}, headers={'X-Request-ID': f"m{month}"})
    assert r.status_code == 200, r.text
    ids = r.json()['request_ids']
    _wait_logged(store, n_before + len(ids))
    lab = c.post('/labels', json={'labels': dict(zip(ids, rows.price.tolist())), 'source': 'sales'})
    assert lab.status_code == 200 and len(lab.json()['accepted']) == len(ids), lab.text
    return r.json()

@pytest.mark.slow
def test_shadow_story_against_the_server(tmp_path, champion, early, computers):
    """retrain deploys its challenger in shadow (not promoted); the real server scores every request with both and answers
    with the champion; after the late labels the paired comparison on the same live rows promotes the shadow."""
    from assembly_line.serve import create_app
    reg = _registry(tmp_path, champion, early)
    store = reg.store
    fb = lambda svc: feedback_router(svc, policy=POLICY, base_data=early)
    app = create_app('computers', store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05, extra_routers=[fb])
    auth = {'Authorization': f'Bearer {TOKEN}'}
    with running(app, timeout=180) as c:
        n = sum(len(_serve_live(c, store, computers, m, 0 if m == 9 else len(computers[computers.trend == 9]))['request_ids']) for m in (9, 10))
        assert c.post('/admin/shadow/evaluate', json={}).status_code == 401
        r = c.post('/admin/shadow/evaluate', headers=auth, json={})
        assert r.status_code == 200 and r.json()['decision'] == 'skipped' and 'no version' in r.json()['reasons'][0]
        r = c.post('/admin/retrain', headers=auth, json={'shadow': True})
        out = r.json()
        assert r.status_code == 200 and out['decision'] == 'shadow', r.text
        assert (out['champion'], out['challenger']) == (1, 2) and out['reload']['shadow']['current'] == 2
        assert store.get_alias('computers', 'champion') == 1 and store.get_alias('computers', 'shadow') == 2
        live = {}
        for m in (11, 12):
            live[m] = _serve_live(c, store, computers, m, n); n += len(live[m]['request_ids'])
            assert live[m]['version'] == 1                                       # answered by the champion
            X = computers[computers.trend == m].drop(columns=['price', 'trend'])
            assert np.allclose(live[m]['predictions'], champion.predict(X).to_numpy())
        ids = live[11]['request_ids'] + live[12]['request_ids']
        t0 = time.time()                                                         # the shadow writes in the background
        while len(store.shadow_predictions('computers', 2)) < len(ids) and time.time() - t0 < 30: time.sleep(0.05)
        sp = store.shadow_predictions('computers', 2)
        assert sorted(sp.request_id) == sorted(ids) and sp.error.isna().all()
        chall = reg.load('computers@2')
        X = computers[computers.trend == 11].drop(columns=['price', 'trend'])
        got = sp.set_index('request_id').loc[live[11]['request_ids'], 'outputs'].map(lambda o: o['prediction'])
        assert np.allclose(got.to_numpy(float), chall.predict(X).to_numpy())    # the shadow's own answers
        kept = c.post('/admin/shadow/evaluate', headers=auth, json={'promote': False}).json()
        assert kept['decision'] == 'kept' and 'promote=False' in kept['reasons'][0] and store.get_alias('computers', 'champion') == 1
        r = c.post('/admin/shadow/evaluate', headers=auth, json={})
        ev = r.json()
        assert r.status_code == 200 and ev['decision'] == 'promoted', r.text
        assert ev['comparison']['n'] == len(ids) == ev['data']['compared'] and ev['comparison']['verdict'] == 'b better'
        assert ev['reload']['current']['version'] == 2 and ev['reload']['shadow']['current'] is None
        assert c.get('/model').json()['version'] == 2 and c.get('/health').json()['shadow']['version'] is None
        assert 'shadow' not in store.aliases('computers')
    # the comparison is the paired bootstrap of the logged answers on the labelled live rows
    lab = store.labelled_predictions('computers', 1).set_index('request_id').loc[ids]
    a = lab.outputs.map(lambda o: o['prediction']).to_numpy(float)
    b = store.shadow_predictions('computers', 2).set_index('request_id').loc[ids].outputs.map(lambda o: o['prediction']).to_numpy(float)
    pc = paired_bootstrap(lab.label.to_numpy(float), a, b, 'rmse', n_boot=RetrainPolicy().n_boot, seed=0)
    assert np.isclose(pc.low, ev['comparison']['low']) and np.isclose(pc.diff, ev['comparison']['diff'])
    acts = store.audit_log('computers').action.tolist()
    order = ['retrain_started', 'challenger_compared', 'shadow_deployed', 'shadow_compared', 'champion_kept', 'shadow_promoted']
    pos = [acts.index(x) for x in order]
    assert pos == sorted(pos), acts
    assert store.alias_history('computers', 'champion').new_version.tolist() == [1, 2]

@pytest.mark.slow
def test_shadow_decision_needs_labels_a_real_difference_and_no_failures(tmp_path, champion, early, computers):
    "A shadow that is the same model is kept (no difference beyond the noise); too few labels skip; failures block a promotion."
    reg = _registry(tmp_path, champion, early)
    store = reg.store
    same = reg.register(reg.resolve('computers@1')[1], 'computers', card=False).version
    with pytest.raises(ConfigError, match='shadow of itself'): deploy_shadow(reg, 'computers', 1)
    with pytest.raises(RegistryError): deploy_shadow(reg, 'computers', 99)
    assert deploy_shadow(reg, 'computers', same, why='same model') is None
    from assembly_line.serve import create_app
    app = create_app('computers', store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05)
    with running(app, timeout=120) as c:
        rows = computers[computers.trend == 9]
        X = json.loads(rows.drop(columns=['price', 'trend']).to_json(orient='records'))
        ids = c.post('/predict', json={'records': X}, headers={'X-Request-ID': 'q'}).json()['request_ids']
        _wait_logged(store, len(ids))
        c.post('/labels', json={'labels': dict(zip(ids[:20], rows.price.tolist()[:20]))})
    few = evaluate_shadow(reg, 'computers', POLICY)
    assert few.decision == 'skipped' and 'only 20 live requests' in few.reasons[0] and few.comparison is None
    store.add_labels(dict(zip(ids[20:], rows.price.tolist()[20:])))
    ev = evaluate_shadow(reg, 'computers', RetrainPolicy(**POLICY))
    assert ev.decision == 'kept' and ev.comparison.diff == 0 and ev.comparison.verdict == 'no clear difference'
    assert store.get_alias('computers', 'champion') == 1 and store.get_alias('computers', 'shadow') == same
    # a shadow that failed on live requests is kept even when its answers are better: the failures must not be left out
    better = reg.register(reg.resolve('computers@1')[1], 'computers', card=False).version
    deploy_shadow(reg, 'computers', better, why='rows logged by hand')
    y = rows.price.to_numpy(float)
    store.log_shadow([dict(request_id=r, model='computers', version=better, outputs={'prediction': float(v)}) for r, v in zip(ids, y)] +
                     [dict(request_id='never-answered', model='computers', version=better, error='ValueError: boom')])
    ev = evaluate_shadow(reg, 'computers', RetrainPolicy(**POLICY))
    assert ev.decision == 'kept' and ev.comparison.b_better and 'failed on 1 of' in ev.reasons[0]
    assert store.get_alias('computers', 'champion') == 1
    ok = evaluate_shadow(reg, 'computers', RetrainPolicy(**POLICY), max_failure_share=0.01)
    assert ok.decision == 'promoted' and store.get_alias('computers', 'champion') == better
    with pytest.raises(ConfigError): evaluate_shadow(reg, 'computers', max_failure_share=1.5)
