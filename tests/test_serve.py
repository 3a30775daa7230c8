"""The prediction service against a real uvicorn server on a free loopback port: every route, good and bad input,
the admin token, tampered bundles, and the prediction log in real SQLite / PostgreSQL stores."""
import json, random, shutil, signal, socket, sqlite3, threading, time, contextlib
from pathlib import Path
import numpy as np, pandas as pd
import pytest

httpx = pytest.importorskip('httpx')
uvicorn = pytest.importorskip('uvicorn')
from assembly_line.core import IntegrityError, StoreError
from assembly_line.store import Store
from assembly_line.deploy import Registry
from assembly_line.serve import create_app, records_frame

TOKEN = 'test-admin-token-123'


from servers import running, serving_process   # real uvicorn in a thread / in a subprocess (tests/servers.py)

@pytest.fixture(scope='module')
def reg(adult_line, tmp_path_factory):
    "A registry (SQLite) with adult v1 (champion) and v2 (challenger)."
    home = tmp_path_factory.mktemp('serve')
    r = Registry(f"sqlite:///{home/'store.sqlite'}", root=home/'artifacts')
    r.register(adult_line[0], 'adult', alias='champion', why='first', card=False)
    r.register(r.resolve('adult@1')[1], 'adult', alias='challenger', why='second', card=False)
    return r

@pytest.fixture(scope='module')
def server(reg):
    "The app serving `adult` (its champion) with an admin token, running for the whole module."
    with running(create_app('adult', reg.store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05)) as c: yield c

@pytest.fixture(scope='module')
def rows(adult_line):
    return adult_line[1].drop(columns='income').iloc[:40].reset_index(drop=True)

def _recs(df): return json.loads(df.to_json(orient='records'))


# ------------------------------------------------------------------------------------------- good requests

def test_predict_single_batch_csv(server, adult_line, rows):
    line, recs = adult_line[0], _recs(rows)
    r = server.post('/predict?proba=true', json=recs[0], headers={'X-Request-ID': 'one-1'})
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d['model'], d['version'], d['request_ids']) == ('adult', 1, ['one-1'])
    assert d['predictions'] == line.predict(rows.iloc[[0]]).tolist()
    p = line.predict_proba(rows.iloc[[0]])
    for c in p.columns: assert d['probabilities'][0][c] == pytest.approx(p[c].iloc[0], abs=1e-12)
    b = server.post('/predict', json={'records': recs}).json()
    assert b['predictions'] == line.predict(rows).tolist() and 'probabilities' not in b
    assert len(set(b['request_ids'])) == len(recs)
    assert server.post('/predict', json=recs).json()['predictions'] == b['predictions']      # a bare list
    c = server.post('/predict?proba=true', content=rows.to_csv(index=False), headers={'Content-Type': 'text/csv'})
    assert c.status_code == 200, c.text
    assert c.json()['predictions'] == b['predictions']
    probs = pd.DataFrame(c.json()['probabilities'])
    assert np.allclose(probs.sum(1), 1)
    ids = server.post('/predict', json=recs[:3], headers={'X-Request-ID': 'batch-7'}).json()['request_ids']
    assert ids == ['batch-7-0', 'batch-7-1', 'batch-7-2']

def test_missing_values_and_extra_keys_are_accepted(server, rows):
    rec = {**_recs(rows)[0], 'occupation': None, 'age': None, 'note': 'ignored', 'income': '>50K'}
    r = server.post('/predict', json=rec)
    assert r.status_code == 200, r.text
    assert r.json()['warnings'][0]['kind'] == 'unexpected_column' and 'note' in r.json()['warnings'][0]['examples']


# ------------------------------------------------------------------------------------------- bad requests

def _problems(r): return {(p['column'], p['kind']) for p in r.json()['problems']}

def test_schema_problems_listed(server, rows):
    recs = _recs(rows.iloc[:3])
    recs[1]['age'] = 'forty'                       # one unparseable value among numbers
    del recs[2]['education']                       # a missing column in one record
    recs[0]['hours-per-week'] = {'h': 40}          # a nested object
    r = server.post('/predict', json={'records': recs})
    assert r.status_code == 422
    assert _problems(r) == {('education', 'missing_column'), ('hours-per-week', 'wrong_type')}
    p = {q['column']: q for q in r.json()['problems']}
    assert p['education']['rows'] == [2] and p['hours-per-week']['row'] == 0
    recs = _recs(rows.iloc[:3]); recs[1]['age'] = 'forty'
    r = server.post('/predict', json=recs)         # pre-checks pass: the schema's own check finds it
    assert r.status_code == 422
    q = r.json()['problems'][0]
    assert (q['column'], q['kind'], q['row'], q['value'], q['expected']) == ('age', 'unparseable', 1, 'forty', 'numbers')
    r = server.post('/predict', json={k: v for k, v in _recs(rows)[0].items() if k not in ('age', 'sex')})
    assert _problems(r) == {('age', 'missing_column'), ('sex', 'missing_column')}

def test_strict_mode_refuses_unseen_categories(server, rows):
    rec = {**_recs(rows)[0], 'workclass': 'Astronaut'}
    assert server.post('/predict', json=rec).status_code == 200
    r = server.post('/predict?strict=true', json=rec)
    assert r.status_code == 422 and ('workclass', 'unseen_category') in _problems(r)

BAD_BODIES = [
    ('malformed', b'{"age": 3', 'application/json', 422),
    ('empty body', b'', 'application/json', 422),
    ('empty list', b'[]', 'application/json', 422),
    ('empty records', b'{"records": []}', 'application/json', 422),
    ('scalar', b'42', 'application/json', 422),
    ('list of scalars', b'[1, 2]', 'application/json', 422),
    ('NaN literal', b'{"age": NaN}', 'application/json', 422),
    ('Infinity literal', b'[{"age": -Infinity}]', 'application/json', 422),
    ('deep nesting', b'[' * 100_000 + b']' * 100_000, 'application/json', 422),
    ('not utf-8', b'\xff\xfe\x00{', 'application/json', 422),
    ('wrong content type', b'age=3', 'application/x-www-form-urlencoded', 415),
    ('text/plain', b'hello', 'text/plain', 415),
    ('csv no rows', b'age,workclass\n', 'text/csv', 422),
    ('csv wrong columns', b'a,b\n1,2\n', 'text/csv', 422),
    ('csv ragged', b'age,workclass\n1,2,3,4\n5\n"unclosed', 'text/csv', 422),
]

@pytest.mark.parametrize('name,body,ctype,status', BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies(server, name, body, ctype, status):
    r = server.post('/predict', content=body, headers={'Content-Type': ctype})
    assert r.status_code == status, (name, r.status_code, r.text[:300])
    assert r.json()['message']

@pytest.mark.parametrize('value,kind', [(1e400, 'not_finite'), (10**400, 'not_finite'), (True, 'wrong_type'), ([1], 'wrong_type'),
                                        ({'x': 1}, 'wrong_type'), ('12abc', 'wrong_type')])
def test_bad_numbers(server, rows, value, kind):
    body = json.dumps({**_recs(rows)[0], 'age': value}).replace('Infinity', '1e400')
    r = server.post('/predict', content=body, headers={'Content-Type': 'application/json'})
    assert r.status_code == 422, r.text
    assert ('age', kind) in _problems(r)

def test_bad_query_and_headers(server, rows):
    rec = _recs(rows)[0]
    assert server.post('/predict?proba=maybe', json=rec).status_code == 422
    assert server.post('/predict', json=rec, headers={'X-Request-ID': 'bad id with spaces'}).status_code == 422
    assert server.post('/predict', json=rec, headers={'X-Request-ID': 'x'*49}).status_code == 422
    assert server.get('/predict').status_code == 405

def test_boolean_query_values(server, rows):
    "`proba`/`strict` read as FastAPI reads booleans; a value that is none of them names the parameter."
    rec = _recs(rows)[0]
    for v in ('true', 'TRUE', '1', 'yes', 'on', 't', 'Y'):
        assert 'probabilities' in server.post(f'/predict?proba={v}', json=rec).json(), v
    for v in ('false', '0', 'no', 'off', 'F'):
        assert 'probabilities' not in server.post(f'/predict?proba={v}', json=rec).json(), v
    r = server.post('/predict?strict=maybe', json=rec)
    assert r.status_code == 422 and r.json()['parameter'] == 'strict' and r.json()['value'] == 'maybe'

def test_every_request_runs_on_a_model_thread(adult_bundle, sqlite_url, rows):
    "A single record and batches alike are parsed and predicted on the pool of model threads, never on the event loop's thread."
    from fastapi.testclient import TestClient
    recs = _recs(rows)
    app = create_app(adult_bundle, sqlite_url, log=False, model_threads=2)
    svc, seen = app.state.service, []
    pt = svc.predict_timed
    def spy(data, *a):
        seen.append((len(data), threading.current_thread().name)); return pt(data, *a)
    svc.predict_timed = spy
    with TestClient(app) as c:
        for n in (1, 8, 9, 40):
            r = c.post('/predict', json=recs[:n])
            assert r.status_code == 200 and len(r.json()['predictions']) == n
        assert c.post('/predict', content=rows.head(3).to_csv(index=False), headers={'Content-Type': 'text/csv'}).status_code == 200
    assert [n for n, _ in seen] == [1, 8, 9, 40, 3] and all(name.startswith('assembly-line-model') for _, name in seen), seen
    assert svc.executor is None and svc.model_threads == 2      # closed with the lifespan

def test_health_answers_while_the_model_is_busy(adult_bundle, sqlite_url, rows):
    "Every model thread held inside the model: `/health` and `/model` still answer, before the held predictions do."
    app = create_app(adult_bundle, sqlite_url, log=False, model_threads=1)
    scores, entered, release = app.state.service.model.line.model_.predict_scores, threading.Event(), threading.Event()
    def held(X):
        entered.set(); release.wait(60); return scores(X)
    app.state.service.model.line.model_.predict_scores = held     # the one model thread blocks in the model
    done, answers = [], []
    with running(app) as c:
        def predict(rec):
            answers.append(c.post('/predict', json=rec).status_code); done.append(time.monotonic())
        ts = [threading.Thread(target=predict, args=(r,)) for r in _recs(rows)[:3]]   # one held, two queued behind it
        for t in ts: t.start()
        try:
            assert entered.wait(30), "no request reached the model"
            h, m = c.get('/health'), c.get('/model')
            answered = time.monotonic()
            assert (h.status_code, h.json()['status'], m.status_code) == (200, 'ok', 200)
            assert not done                                            # the predictions are still held
        finally:
            release.set()
            for t in ts: t.join(60)
    assert answers == [200]*3 and min(done) > answered

def test_every_json_batch_form_gives_the_same_answers_and_log(adult_bundle, sqlite_url, adult_line):
    "A list, `{\"records\": [...]}` and an indented body give the frame, answers and logged inputs of plain records; the log keeps them as sent."
    from assembly_line.serve import ModelService
    svc = ModelService(adult_bundle, sqlite_url)
    try:
        recs = _recs(adult_line[1].iloc[:300])                         # the target included, as clients may send it
        recs[1]['age'], recs[2]['workclass'], recs[3]['hours-per-week'], recs[4]['age'] = None, None, 40.5, 10**30
        b = svc.predict(recs, proba=True)
        for body in (json.dumps(recs), json.dumps({'records': recs}), ' \n' + json.dumps({ 'records': recs}, indent=1)):
            parsed = svc.parse(body.encode(), 'application/json')
            pd.testing.assert_frame_equal(records_frame(parsed, svc.model.line.schema_, ignore=('income',))[0],
                                          records_frame(recs, svc.model.line.schema_, ignore=('income',))[0])
            a = svc.predict(parsed, proba=True)
            assert (a['predictions'], a['probabilities']) == (b['predictions'], b['probabilities'])
        c = svc.predict(recs)                                          # no probabilities asked for: the log still keeps them
        assert svc.predlog.close()
        log = Store(sqlite_url).get_predictions().set_index('request_id')
        assert [log.inputs[r] for r in a['request_ids'][:4]] == recs[:4]  # the records as sent: target, nulls, a float in an integer column
        assert [log.outputs[r] for r in c['request_ids']] == [{'prediction': p, 'proba': q} for p, q in zip(b['predictions'], b['probabilities'])]
    finally: svc.close()

def test_freeze_gc_and_reload(reg):
    "`freeze_gc` freezes the loaded model out of the GC's scans; a reload thaws, collects the old model, freezes the new."
    import gc, weakref
    from assembly_line.serve import ModelService
    base = gc.get_freeze_count()
    try:
        svc = ModelService('adult@champion', reg.store, registry_root=reg.root, log=False, freeze_gc=True)
        frozen = gc.get_freeze_count()
        assert frozen > base + 10_000, (base, frozen)          # the line's objects, not a handful
        from assembly_line.serve import _refreeze
        svc.model.line.cycle = [svc.model.line]   # cyclic garbage once replaced: only a collection frees it, and not while frozen
        _refreeze()
        old = weakref.ref(svc.model.line)
        reg.set_alias('adult', 'champion', 2, why='test freeze')
        assert svc.reload()['current']['version'] == 2
        assert old() is None and gc.get_freeze_count() > 10_000
        svc.close()
        plain = ModelService('adult@champion', reg.store, registry_root=reg.root, log=False)
        assert not plain.freeze_gc
        plain.close()
    finally:
        reg.set_alias('adult', 'champion', 1, why='back after the freeze test')
        gc.unfreeze()

def test_mounted_app_answers_through_the_route(adult_bundle, sqlite_url, rows):
    "Under a root path the fast path steps aside and FastAPI's route runs the same handler: same answers, same 422s."
    from fastapi.testclient import TestClient
    recs = _recs(rows)
    app = create_app(adult_bundle, sqlite_url, log=False)
    with TestClient(app) as plain, TestClient(app, root_path='/api') as mounted:
        a, b = plain.post('/predict?proba=1', json=recs[:3]).json(), mounted.post('/api/predict?proba=1', json=recs[:3]).json()
        assert a['predictions'] == b['predictions'] and a['probabilities'] == b['probabilities']
        bad = [c.post(p, json={**recs[0], 'age': 'old'}) for c, p in ((plain, '/predict'), (mounted, '/api/predict'))]
        assert [r.status_code for r in bad] == [422, 422] and bad[0].json() == bad[1].json()
        r = mounted.post('/api/predict?proba=maybe', json=recs[0])
        assert r.status_code == 422 and r.json()['parameter'] == 'proba'

def test_fuzzed_records_never_500(server, rows):
    "Hand-rolled fuzzing: random junk in random columns of real records gets 200 or 422, never a server error."
    rng = random.Random(0)
    junk = [None, '', ' ', '?', 'NaN', '1e999', '-0', 0, -1, 2**63, -2**70, 1e308, -1e-308, 3.5, True, False, [], {}, [None],
            {'a': [1]}, 'ünïcødé', '\x00', 'a'*10_000, '12,5', '$1,000', '2020-01-01']
    recs = _recs(rows)
    statuses = []
    for i in range(30):
        batch = [dict(r) for r in rng.sample(recs, rng.randint(1, 4))]
        for r in batch:
            for c in rng.sample(list(r), rng.randint(1, 3)): r[c] = rng.choice(junk)
            if rng.random() < .2: r.pop(rng.choice(list(r)))
        res = server.post('/predict', json=batch if rng.random() < .5 else {'records': batch})
        assert res.status_code in (200, 422), (batch, res.status_code, res.text[:500])
        statuses.append(res.status_code)
    assert {200, 422} <= set(statuses)


# ------------------------------------------------------------------------------------------- other routes

def test_health_model_docs(server, adult_line):
    h = server.get('/health')
    assert h.status_code == 200 and h.json()['status'] == 'ok'
    assert h.json()['model_loaded'] and h.json()['store']['reachable'] and h.json()['version'] == 1
    m = server.get('/model').json()
    line = adult_line[0]
    assert (m['name'], m['version'], m['target']) == ('adult', 1, 'income')
    assert m['features'] == line.schema_.features and m['classes'] == list(line.classes_)
    assert m['schema']['target'] == 'income' and m['leaderboard'][0]['model'] == line.best_
    o = server.get('/openapi.json').json()
    assert set(o['components']['schemas']['Record']['properties']) == set(line.schema_.features)
    assert {'/predict', '/health', '/model', '/admin/reload', '/admin/promote', '/admin/rollback'} <= set(o['paths'])
    assert 'PredictResponse' in o['components']['schemas'] and '422' in o['paths']['/predict']['post']['responses']
    params = {p['name']: p for p in o['paths']['/predict']['post']['parameters']}
    assert params['proba']['in'] == params['strict']['in'] == 'query' and params['X-Request-ID']['in'] == 'header'
    assert params['proba']['schema']['type'] == 'boolean'
    assert server.get('/docs').status_code == 200

def test_predictions_are_logged(server, reg, rows):
    ids = server.post('/predict?proba=true', json=_recs(rows.iloc[:5]), headers={'X-Request-ID': 'logged'}).json()['request_ids']
    deadline = time.time() + 20
    while time.time() < deadline:
        got = reg.store.get_predictions('adult')
        got = got[got['request_id'].isin(ids)]
        if len(got) == 5: break
        time.sleep(0.05)
    assert sorted(got['request_id']) == sorted(ids)
    assert (got['version'] == 1).all() and got['latency_ms'].gt(0).all()
    first = got.set_index('request_id').loc['logged-0']
    assert first['inputs']['age'] == int(rows['age'].iloc[0]) and set(first['outputs']['proba']) == {'<=50K', '>50K'}


# ------------------------------------------------------------------------------------------- admin

def test_admin_token_checks(server):
    for h in ({}, {'Authorization': 'Bearer wrong'}, {'Authorization': TOKEN}, {'Authorization': f'Basic {TOKEN}'}):
        r = server.post('/admin/reload', headers=h)
        assert r.status_code == 401, (h, r.text)
        assert r.headers['www-authenticate'] == 'Bearer'
    assert server.post('/admin/reload', headers={'Authorization': f'Bearer {TOKEN}'}).status_code == 200

def test_admin_disabled_without_token(adult_bundle, sqlite_url, monkeypatch):
    monkeypatch.delenv('ASSEMBLY_LINE_ADMIN_TOKEN', raising=False)
    with running(create_app(adult_bundle, sqlite_url)) as c:
        r = c.post('/admin/reload', headers={'Authorization': 'Bearer anything'})
        assert r.status_code == 403 and 'ASSEMBLY_LINE_ADMIN_TOKEN' in r.json()['message']
    monkeypatch.setenv('ASSEMBLY_LINE_ADMIN_TOKEN', 'from-env')
    with running(create_app(adult_bundle, sqlite_url)) as c:
        assert c.post('/admin/reload', headers={'Authorization': 'Bearer from-env'}).status_code == 200
        r = c.post('/admin/promote', json={'version': 2}, headers={'Authorization': 'Bearer from-env'})
        assert r.status_code == 409 and r.json()['error'] == 'NoRegistry'

def test_promote_and_rollback(server, reg, rows):
    auth = {'Authorization': f'Bearer {TOKEN}'}
    r = server.post('/admin/promote', json={'version': 2, 'why': 'challenger won'}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()['previous'] == 1 and r.json()['reload']['current']['version'] == 2
    assert server.post('/predict', json=_recs(rows)[0]).json()['version'] == 2
    assert server.post('/admin/promote', json={'version': 99}, headers=auth).status_code == 404
    r = server.post('/admin/rollback', json={'why': 'test'}, headers=auth)
    assert r.status_code == 200 and r.json()['version'] == 1
    assert server.get('/model').json()['version'] == 1
    h = reg.history('adult', 'champion')
    assert h['new_version'].tolist()[-2:] == [2, 1] and h['why'].iloc[-2] == 'challenger won'


def test_promote_and_rollback_are_compare_and_swap(reg, adult_line, rows):
    "A caller whose view of the alias is stale gets 409 RegistryConflict and nothing moves."
    mv = reg.register(adult_line[0], 'adult_cas', alias='champion', card=False)
    v2 = reg.register(reg.resolve(f'adult_cas@{mv.version}')[1], 'adult_cas', card=False).version
    auth = {'Authorization': f'Bearer {TOKEN}'}
    with running(create_app('adult_cas', reg.store, admin_token=TOKEN, registry_root=reg.root)) as c:
        before = reg.history('adult_cas')
        r = c.post('/admin/promote', json={'version': v2, 'expected': v2}, headers=auth)     # the caller thinks v2 already serves
        assert r.status_code == 409 and r.json()['error'] == 'RegistryConflict', r.text
        assert r.json()['actual_version'] == mv.version and r.json()['expected_version'] == v2
        assert len(reg.history('adult_cas')) == len(before) and reg.store.get_alias('adult_cas', 'champion') == mv.version
        r = c.post('/admin/promote', json={'version': v2, 'expected': mv.version}, headers=auth)
        assert r.status_code == 200 and r.json()['previous'] == mv.version, r.text
        r = c.post('/admin/rollback', json={'expected': mv.version}, headers=auth)           # stale: v2 serves now
        assert r.status_code == 409 and r.json()['error'] == 'RegistryConflict', r.text
        assert reg.store.get_alias('adult_cas', 'champion') == v2
        r = c.post('/admin/rollback', json={'expected': v2}, headers=auth)
        assert r.status_code == 200 and r.json()['version'] == mv.version, r.text

def test_refused_promote_leaves_every_alias(reg, adult_line, rows):
    "Promoting a tampered version is refused before the alias moves: the registry, the service and the next start agree."
    mv = reg.register(adult_line[0], 'adult_tp', alias='champion', card=False)
    bad = reg.register(reg.resolve(f'adult_tp@{mv.version}')[1], 'adult_tp', alias='challenger', card=False)
    f = Path(bad.uri)/'leaderboard.csv'
    f.write_text(f.read_text() + '\n')
    auth = {'Authorization': f'Bearer {TOKEN}'}
    before = reg.history('adult_tp')
    with running(create_app('adult_tp', reg.store, admin_token=TOKEN, registry_root=reg.root)) as c:
        r = c.post('/admin/promote', json={'version': bad.version}, headers=auth)
        assert r.status_code == 409 and r.json()['error'] == 'IntegrityError', r.text
        assert c.post('/predict', json=_recs(rows)[0]).json()['version'] == mv.version
    assert reg.store.aliases('adult_tp') == {'champion': mv.version, 'challenger': bad.version}
    pd.testing.assert_frame_equal(reg.history('adult_tp'), before)
    with running(create_app('adult_tp', reg.store, registry_root=reg.root)) as c:          # the next start still works
        assert c.get('/model').json()['version'] == mv.version


# ------------------------------------------------------------------------------------------- tampered bundles

def test_tampered_bundle_refused_at_startup(adult_bundle, tmp_path, sqlite_url):
    b = shutil.copytree(adult_bundle, tmp_path/'bundle')
    (b/'schema.json').write_text((b/'schema.json').read_text().replace('"income"', '"incOme"', 1))
    with pytest.raises(IntegrityError, match='SHA-256'): create_app(b, sqlite_url)
    (b/'schema.json').unlink()
    with pytest.raises(IntegrityError, match='missing'): create_app(b, sqlite_url)

def test_tampered_bundle_refused_at_reload(reg, adult_line, rows):
    mv = reg.register(adult_line[0], 'adult_t', alias='champion', card=False)
    with running(create_app('adult_t', reg.store, admin_token=TOKEN, registry_root=reg.root)) as c:
        f = Path(mv.uri)/'leaderboard.csv'
        f.write_text(f.read_text() + '\n')
        r = c.post('/admin/reload', headers={'Authorization': f'Bearer {TOKEN}'})
        assert r.status_code == 409 and r.json()['error'] == 'IntegrityError'
        ok = c.post('/predict', json=_recs(rows)[0])       # the verified model loaded earlier keeps serving
        assert ok.status_code == 200 and ok.json()['model'] == 'adult_t'


# ------------------------------------------------------------------------------------------- the log survives shutdown

def _flush_on_shutdown(bundle, url, rows):
    n = 60
    recs = _recs(rows)
    with running(create_app(bundle, url, log_interval=3600)) as c:    # no timed flush: only shutdown writes
        sent = [c.post('/predict', json=recs[i % len(recs)]).json()['request_ids'][0] for i in range(n)]
        sent += c.post('/predict', json=recs[:10]).json()['request_ids']
        assert c.get('/health').json()['logging']['pending'] == n + 10
    st = Store(url)
    got = st.get_predictions()
    assert len(got) == n + 10 and set(got['request_id']) == set(sent)
    return st

def test_log_flushed_on_shutdown_sqlite(adult_bundle, sqlite_url, rows):
    _flush_on_shutdown(adult_bundle, sqlite_url, rows)

@pytest.mark.postgres
def test_log_flushed_on_shutdown_postgres(adult_bundle, pg_url, rows):
    st = _flush_on_shutdown(adult_bundle, pg_url, rows)
    assert st.dialect == 'postgresql'

def _load(base, recs, sent, stop, per_thread=40, size=25):
    "One client: up to `per_thread` batch requests of `size` records; collects the request ids of every answer."
    with httpx.Client(base_url=base, timeout=60) as c:
        for k in range(per_thread):
            if stop.is_set(): return
            lo = (k*size) % len(recs)
            try: r = c.post('/predict', json={'records': (recs*2)[lo:lo+size]})
            except httpx.TransportError: return                 # the server stopped accepting: nothing was answered
            if r.status_code != 200: return
            sent.extend(r.json()['request_ids'])

@pytest.mark.slow
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_stop_under_load_logs_every_answer(adult_bundle, tmp_path, rows, sig):
    """The real server (a subprocess) under concurrent load while another process holds the store's write lock, stopped
    by a signal at once: every request it answered -- before or after the signal -- is in the log afterwards."""
    path = tmp_path/'store.sqlite'
    url = f"sqlite:///{path}"
    Store(url).close()
    recs, sent, stop = _recs(rows), [], threading.Event()
    with serving_process(adult_bundle, url, busy_timeout=0.2, log_interval=0.05) as (proc, base):
        hold = sqlite3.connect(path, isolation_level=None, timeout=30)
        hold.execute('BEGIN IMMEDIATE')                          # e.g. a batch job writing: the log's writes fail for now
        clients = [threading.Thread(target=_load, args=(base, recs, sent, stop)) for _ in range(8)]
        for t in clients: t.start()
        t0 = time.time()
        while len(sent) < 2000 and time.time() - t0 < 30 and any(t.is_alive() for t in clients): time.sleep(0.05)
        queued = httpx.get(f"{base}/health", timeout=30).json()['logging']
        proc.send_signal(sig)                                   # at once, with thousands of rows still queued
        time.sleep(1.5)                                         # shutting down while the store still refuses writes
        hold.rollback(); hold.close()
        for t in clients: t.join(60)
        stop.set()
        proc.wait(60)
    assert len(sent) >= 2000 and queued['pending'] > 0, (len(sent), queued)   # the stop really met a queued log
    logged = set(Store(url).get_predictions()['request_id'])
    missing = set(sent) - logged
    assert len(missing) == 0, f"{len(missing)} of {len(sent)} answered predictions are not in the log ({queued})"

def test_no_unlogged_answer_after_close(adult_bundle, sqlite_url, rows):
    "Once the lifespan shutdown has closed the service: a request gets 503, and a prediction still run is logged at once."
    from fastapi.testclient import TestClient
    recs = _recs(rows)
    app = create_app(adult_bundle, sqlite_url, log_interval=3600)
    with TestClient(app) as c: first = c.post('/predict', json=recs[0]).json()['request_ids']
    svc = app.state.service
    late = TestClient(app).post('/predict', json=recs[1])       # no lifespan here: the service stays closed
    assert late.status_code == 503 and late.json()['error'] == 'ShuttingDown'
    more = svc.predict(recs[2:5])['request_ids']                 # e.g. a model call that was already under way
    assert svc.predlog.closed and svc.predlog.stats()['pending'] == 0
    assert set(Store(sqlite_url).get_predictions()['request_id']) == set(first + more)

def test_answers_take_the_fast_json_path(adult_bundle, sqlite_url, rows):
    "Class labels are plain Python values, so orjson, not the ~10x slower standard encoder, writes answers and log rows."
    orjson = pytest.importorskip('orjson')
    from assembly_line.serve import ModelService
    svc = ModelService(adult_bundle, sqlite_url, log=False)
    try:
        out = svc.predict(_recs(rows), proba=True)
        assert all(type(k) is str for k in out['probabilities'][0]) and all(type(c) is str for c in svc.model.classes)
        orjson.dumps(out)                                    # a numpy.str_ key makes this raise TypeError
    finally: svc.close()

def _wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end: time.sleep(0.01)
    return cond()

def _odd_inputs(svc, df):
    """Every kind of input a request brings, with odd values: a JSON batch with newlines (nulls, a float in an integer column),
    CSV (missing values), plain records (a huge integer, an ignored key with quotes and a newline, NaN)."""
    recs = _recs(df)
    recs[1]['age'], recs[2]['workclass'], recs[3]['hours-per-week'] = None, None, 40.5
    odd = [dict(r) for r in recs[:5]]
    odd[0]['age'], odd[1]['note'], odd[2]['workclass'] = 10**30, 'é"\\n', float('nan')
    csv = df.drop(columns='income').to_csv(index=False).replace(',40,', ',,', 3).encode()
    typed = svc.parse(json.dumps({'records': recs}, indent=1).encode(), 'application/json')   # newlines in the body
    return {'typed': (typed, recs), 'records': (odd, odd), 'csv': (svc.parse(csv, 'text/csv'), None)}

def test_log_stores_every_kind_of_input_as_sent(adult_bundle, store_url, adult_line):
    "The spool's rows, ingested, are what `log_predictions` stores for the same records: inputs as sent, outputs with every class's probability."
    from assembly_line.serve import ModelService
    svc = ModelService(adult_bundle, store_url, log_interval=3600)
    try:
        df = adult_line[1].iloc[:30].reset_index(drop=True)
        out = {k: svc.predict(data, request_id=f"x-{k}") for k, (data, _) in _odd_inputs(svc, df).items()}
        assert svc.predlog.stats()['pending'] == 65 and svc.store.count_predictions() == 0    # appended, not ingested yet
        rep = svc.ingest()
        assert (rep.rows, rep.problems, svc.store.count_predictions()) == (65, [], 65)
        got = svc.store.get_predictions().set_index('request_id')
        for k, (data, sent) in _odd_inputs(svc, df).items():
            ids = out[k]['request_ids']
            expect = sent if sent is not None else [{c: (None if pd.isna(v) else v) for c, v in r.items()}
                                                    for r in data.to_dict('records')]
            assert [got.inputs[r] for r in ids] == json.loads(json.dumps(expect).replace('NaN', 'null')), k
            assert all(set(got.outputs[r]['proba']) == {'<=50K', '>50K'} for r in ids)
            assert [got.outputs[r]['prediction'] for r in ids] == out[k]['predictions']
        assert got.inputs['x-records-0']['age'] == 10**30 and got.inputs['x-records-2']['workclass'] is None
        assert got.model.unique().tolist() == [svc.model.name] and got.version.isna().all()     # a bundle folder: no version
    finally: svc.close()

def test_a_reused_request_id_is_stored_once(adult_bundle, sqlite_url, rows):
    "A client that sends one X-Request-ID twice: the first prediction is kept, the second counted as skipped; the other requests are stored."
    recs = _recs(rows)
    app = create_app(adult_bundle, sqlite_url, log_interval=3600)
    with running(app) as c:
        for rid, r in zip(['a', 'b', 'dup', 'c', 'dup', 'd'], recs):
            assert c.post('/predict', json=r, headers={'X-Request-ID': rid}).status_code == 200
    got = Store(sqlite_url).get_predictions()
    assert sorted(got.request_id) == ['a', 'b', 'c', 'd', 'dup']
    assert got.set_index('request_id').inputs['dup'] == recs[2]          # the first one
    assert app.state.service.predlog.stats()['skipped'] == 1

def test_labels_right_after_the_answer_find_their_prediction(server, rows):
    "`POST /labels` ingests the spool first: a label sent the moment its answer came back is accepted."
    ids = server.post('/predict', json=_recs(rows)[:3]).json()['request_ids']
    r = server.post('/labels', json={'labels': [{'request_id': i, 'label': '>50K'} for i in ids]})
    assert r.status_code == 200 and r.json()['ok'], r.text


# ------------------------------------------------------------------------------------------- extension points

def test_extra_routers(adult_bundle, sqlite_url):
    from fastapi import APIRouter, Depends
    def factory(svc):
        r = APIRouter()
        @r.get('/extra/name')
        def name(): return {'name': svc.model.name}
        @r.post('/extra/admin', dependencies=[Depends(svc.require_admin)])
        def adm(): return {'ok': True}
        return r
    with running(create_app(adult_bundle, sqlite_url, admin_token=TOKEN, extra_routers=[factory])) as c:
        assert c.get('/extra/name').json() == {'name': 'adult'}
        assert c.post('/extra/admin').status_code == 401
        assert c.post('/extra/admin', headers={'Authorization': f'Bearer {TOKEN}'}).json() == {'ok': True}
        assert c.get('/monitor').status_code == 200               # monitor's router is included when available

def test_records_frame_builds_columns(adult_line, rows):
    line = adult_line[0]
    X, probs, warns = records_frame(_recs(rows), line.schema_)
    assert probs == [] and list(X.columns) == line.schema_.features
    assert X['age'].dtype == np.int64 and X['workclass'].dtype == object      # whole JSON numbers: int64, as read_csv gives
    assert X.dtypes.tolist() == rows.dtypes.tolist()
    assert records_frame([{**_recs(rows)[0], 'age': None}], line.schema_)[0]['age'].dtype == np.float64
    np.testing.assert_allclose(line.predict_proba(X).to_numpy(), line.predict_proba(rows).to_numpy())

def test_frame_records_is_to_dict_records():
    "The CSV log rows: the same dicts, with the same Python value types, as `DataFrame.to_dict('records')`."
    from assembly_line.records import frame_records
    from assembly_line.datasets import load_example
    for name in ('adult', 'titanic', 'hotel_bookings', 'cars', 'penguins'):
        df = load_example(name).head(300)
        got, want = frame_records(df), df.to_dict('records')
        assert len(got) == len(want) == len(df)
        for g, w in zip(got, want):
            assert list(g) == list(w)
            for k in w: assert type(g[k]) is type(w[k]) and (g[k] == w[k] or (pd.isna(g[k]) and pd.isna(w[k]))), (name, k)


# ------------------------------------------------------------------------------------------- a challenger in shadow

def _lean_line(df, **kw):
    from threadpoolctl import threadpool_limits
    from assembly_line.line import AssemblyLine
    with threadpool_limits(1):
        return AssemblyLine('income', time_budget=10, include=['linear'], tune=False, ensemble=False, deterministic=True,
                            n_jobs=1, **kw).fit(df)

@pytest.fixture(scope='module')
def shadow_lines(adult_line):
    "Two real challengers: v2 never saw capital-gain (a different model), v3 needs a column no client sends (it fails on every request)."
    df = adult_line[1]
    return _lean_line(df.drop(columns='capital-gain'), seed=1), _lean_line(df.assign(extra=df['age'] % 7))

@pytest.fixture
def shadow_reg(adult_line, shadow_lines, tmp_path):
    "A fresh registry (SQLite): adult v1 champion, v2 and v3 the challengers above, nothing in shadow yet."
    r = Registry(f"sqlite:///{tmp_path/'store.sqlite'}", root=tmp_path/'artifacts')
    r.register(adult_line[0], 'adult', alias='champion', card=False)
    for ln in shadow_lines: r.register(ln, 'adult', card=False)
    return r

def _traffic(c, recs, df, tag):
    "Singles from 4 clients at once, JSON batches, CSV, bad requests; the answers by request (ids left out) and the answered ids."
    answers, ids = {}, []
    def one(k):
        with httpx.Client(base_url=str(c.base_url), timeout=60) as cc:
            for i in range(k, 24, 4):
                r = cc.post('/predict?proba=true', json=recs[i], headers={'X-Request-ID': f"{tag}-s{i}"})
                answers[f"s{i}"] = r
    th = [threading.Thread(target=one, args=(k,)) for k in range(4)]
    for t in th: t.start()
    for t in th: t.join()
    answers['batch'] = c.post('/predict', json={'records': recs[:30]}, headers={'X-Request-ID': f"{tag}-b"})
    answers['list'] = c.post('/predict?proba=true', json=recs[5:12], headers={'X-Request-ID': f"{tag}-l"})
    answers['csv'] = c.post('/predict', content=df.iloc[:9].to_csv(index=False), headers={'Content-Type': 'text/csv', 'X-Request-ID': f"{tag}-c"})
    answers['bad'] = c.post('/predict', json={**recs[0], 'age': 'forty'}, headers={'X-Request-ID': f"{tag}-x"})
    answers['bad_csv'] = c.post('/predict', content=b'a,b\n1,2\n', headers={'Content-Type': 'text/csv', 'X-Request-ID': f"{tag}-y"})
    answers['nan'] = c.post('/predict', content=b'{"age": NaN}', headers={'Content-Type': 'application/json', 'X-Request-ID': f"{tag}-z"})
    for k, r in answers.items():
        assert r.status_code == (422 if k in ('bad', 'bad_csv', 'nan') else 200), (k, r.text[:300])
        if r.status_code == 200: ids += r.json()['request_ids']
    return {k: (r.status_code, {**r.json(), 'request_ids': None}) for k, r in answers.items()}, ids

def test_shadow_logs_every_answer_and_never_changes_it(shadow_reg, shadow_lines, rows):
    reg, store, auth = shadow_reg, shadow_reg.store, {'Authorization': f'Bearer {TOKEN}'}
    recs = _recs(rows)
    with running(create_app('adult', store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05, shadow=None)) as c:
        alone, _ = _traffic(c, recs, rows, 'alone')
        assert c.get('/health').json()['shadow'] is None
    reg.set_alias('adult', 'shadow', 2, who='test', why='v2 in shadow')
    with running(create_app('adult', store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05)) as c:
        assert c.get('/health').json()['shadow']['version'] == 2
        shadowed, ids = _traffic(c, recs, rows, 'sh')
    assert shadowed == alone                      # the champion's answers and refusals, byte for byte but for the ids
    sp = store.shadow_predictions('adult')
    assert sorted(sp.request_id) == sorted(ids) and len(ids) == 24 + 30 + 7 + 9   # every answered row, no refused one
    assert (sp.version == 2).all() and (sp.alias == 'shadow').all() and sp.error.isna().all()
    champ = store.get_predictions('adult').set_index('request_id')
    assert (champ.loc[ids, 'version'] == 1).all()                                  # the answers came from v1
    # the shadow's rows are v2's own answers to the same records
    got = sp.set_index('request_id')
    want = shadow_lines[0].predict_proba(rows.iloc[:30])
    for i in range(30):
        o = got.loc[f"sh-b-{i}", 'outputs']
        assert o['prediction'] == want.columns[want.iloc[i].argmax()]
        assert np.isclose(o['proba']['>50K'], want['>50K'].iloc[i])
    assert got.loc['sh-s3', 'outputs']['prediction'] == shadow_lines[0].predict(rows.iloc[[3]]).iloc[0]

def test_failing_shadow_never_breaks_a_request(shadow_reg, rows):
    reg, store, auth = shadow_reg, shadow_reg.store, {'Authorization': f'Bearer {TOKEN}'}
    recs = _recs(rows)
    reg.set_alias('adult', 'shadow', 3, who='test', why='a shadow that cannot score these requests')
    with running(create_app('adult', store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05)) as c:
        r = [c.post('/predict', json=recs[i], headers={'X-Request-ID': f"f{i}"}) for i in range(5)]
        b = c.post('/predict', json=recs[:10], headers={'X-Request-ID': 'fb'})
        assert all(x.status_code == 200 and x.json()['version'] == 1 for x in r + [b])
        t0 = time.time()
        while (h := c.get('/health').json())['shadow']['failed'] < 15 and time.time() - t0 < 20: time.sleep(0.05)
        assert h['status'] == 'ok' and h['shadow']['failed'] == 15 and h['shadow']['scored'] == 0 and "'extra'" in h['shadow']['last_error']
    sp = store.shadow_predictions('adult', 3)
    assert len(sp) == 15 and sp.outputs.isna().all() and sp.error.str.contains("'extra'").all(), sp.error.tolist()
    # a tampered shadow is not loaded at all: the champion serves alone and /health says why
    mv = reg.register(reg.resolve('adult@2')[1], 'adult', card=False)
    f = Path(mv.uri)/'leaderboard.csv'; f.write_text(f.read_text() + '\n')
    with running(create_app('adult', store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05)) as c:
        moved = c.post('/admin/shadow', json={'version': mv.version}, headers=auth)
        assert moved.status_code == 409 and moved.json()['error'] == 'IntegrityError'
        assert store.get_alias('adult', 'shadow') == 3                       # refused before the alias moved
        store.set_alias('adult', 'shadow', mv.version, who='test', why='moved past the registry (or tampered after the move)')
        assert c.post('/admin/reload', headers=auth).status_code == 200     # the champion reloads fine
        h = c.get('/health').json()
        assert h['status'] == 'ok' and h['shadow']['version'] is None and 'IntegrityError' in h['shadow']['error']
        assert c.post('/predict', json=recs[0], headers={'X-Request-ID': 'after-tamper'}).status_code == 200
    assert len(store.shadow_predictions('adult', mv.version)) == 0

def test_admin_shadow_route(shadow_reg, adult_bundle, sqlite_url, rows):
    reg, store, auth = shadow_reg, shadow_reg.store, {'Authorization': f'Bearer {TOKEN}'}
    with running(create_app('adult', store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05)) as c:
        assert c.get('/health').json()['shadow'] == dict(alias='shadow', version=None, error=None)
        for h in ({}, {'Authorization': 'Bearer wrong'}):
            r = c.post('/admin/shadow', json={'version': 2}, headers=h)
            assert r.status_code == 401 and r.headers['www-authenticate'] == 'Bearer'
        assert c.post('/admin/shadow', json={'version': 1}, headers=auth).json()['error'] == 'ShadowIsChampion'
        assert c.post('/admin/shadow', json={'version': 99}, headers=auth).status_code == 404
        for body in ({}, {'version': 'two'}, {'version': 2.5}):
            assert c.post('/admin/shadow', json=body, headers=auth).status_code == 422, body
        assert 'shadow' not in store.aliases('adult')                       # nothing refused moved anything
        r = c.post('/admin/shadow', json={'version': 2, 'why': 'try v2'}, headers=auth)
        assert r.status_code == 200 and r.json()['previous'] is None and r.json()['version'] == 2
        c.post('/predict', json=_recs(rows)[0], headers={'X-Request-ID': 'route-1'})
        assert c.get('/health').json()['shadow']['version'] == 2
        reg.set_alias('adult', 'shadow', 3, who='test', why='moved in the registry')
        assert c.post('/admin/reload', headers=auth).json()['shadow'] == dict(alias='shadow', previous=2, current=3, error=None)
        r = c.post('/admin/shadow', json={'version': None}, headers=auth)
        assert r.status_code == 200 and r.json()['previous'] == 3
        assert c.get('/health').json()['shadow']['version'] is None and 'shadow' not in store.aliases('adult')
        c.post('/predict', json=_recs(rows)[0], headers={'X-Request-ID': 'route-2'})
    assert store.shadow_predictions('adult').request_id.tolist() == ['route-1']
    assert store.alias_history('adult', 'shadow').why.tolist() == ['try v2', 'moved in the registry', 'shadow stopped via the API']
    with running(create_app(adult_bundle, sqlite_url, admin_token=TOKEN)) as c:          # a bundle folder has no registry
        r = c.post('/admin/shadow', json={'version': 2}, headers=auth)
        assert r.status_code == 409 and r.json()['error'] == 'NoRegistry'

def test_shadow_scorer_rows_on_sqlite_and_postgres(adult_bundle, adult_line, store_url, rows):
    "The shadow thread on its own, against a real database: grouped entries, a refused entry, labels joined by request id."
    from assembly_line.served import ShadowScorer, load_served
    store = Store(store_url)
    m = load_served(adult_bundle)
    m.version = 7                                    # a registered version's rows carry it (the bundle folder has none)
    sh = ShadowScorer(m, store, alias='shadow')
    recs, t = _recs(rows), pd.Timestamp.now(tz='UTC').to_pydatetime()
    sh.submit(recs[:20], [f"g{i}" for i in range(20)], False, t)
    sh.submit(recs[20:21], ['one'], False, t)
    sh.submit(rows.iloc[21:30], [f"csv{i}" for i in range(9)], False, t)        # a CSV frame: its own group
    sh.submit([{**recs[0], 'age': [1]}], ['bad'], False, t)                    # refused by the schema: a failure row
    assert sh.flush(30)
    st = sh.stats()
    assert (st['scored'], st['failed'], st['written'], st['pending']) == (30, 1, 31, 0)
    got = store.shadow_predictions(version=7).set_index('request_id')
    assert len(got) == 31 and got.loc['bad', 'error'].startswith('SchemaError 422') and got.outputs.isna().sum() == 1
    want = adult_line[0].predict_proba(rows.iloc[:30])
    ids = [f"g{i}" for i in range(20)] + ['one'] + [f"csv{i}" for i in range(9)]
    assert np.allclose([got.loc[i, 'outputs']['proba']['>50K'] for i in ids], want['>50K'].to_numpy())
    assert sh.close() and sh.closed and not sh.submit(recs[:1], ['late'], False, t) and sh.stats()['skipped'] == 1
    with pytest.raises(StoreError, match='already logged'):
        store.log_shadow([dict(request_id='g0', model=m.name, version=7, outputs={'prediction': 'x'})])
    store.log_predictions([dict(request_id='g0', model=m.name, version=1, inputs=recs[0], outputs={'prediction': '<=50K'})])
    store.add_labels({'g0': '>50K'})
    lab = store.shadow_predictions(m.name, 7, labelled=True)
    assert lab.request_id.tolist() == ['g0'] and lab.label.tolist() == ['>50K']


# ------------------------------------------------------------------------------------------- edges (issue 16)
# Each edge was found by probing the service as an attacker would; each test failed on the code before its fix.

ADMIN_ROUTES = ['/admin/reload', '/admin/promote', '/admin/rollback', '/admin/shadow', '/admin/retrain', '/admin/shadow/evaluate']

@pytest.fixture(scope='module')
def edge(reg):
    "The app serving `adult` with a 1 MB body limit (so the limit is cheap to pass), as `(client, port)`."
    with running(create_app('adult', reg.store, admin_token=TOKEN, registry_root=reg.root, log_interval=0.05, max_body_mb=1)) as c:
        yield c, c.base_url.port

def _house(r, status:int):
    "The response has `status` and the house error shape."
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers['content-type'].startswith('application/json'), r.headers
    d = r.json()
    assert isinstance(d['error'], str) and isinstance(d['message'], str) and isinstance(d['problems'], list), d
    return d

def _raw_chunked(port:int, path:str, chunks, end:bool=True, timeout:float=10, headers:str='')->tuple:
    "POST `chunks` with `Transfer-Encoding: chunked` through a raw socket (no terminating chunk unless `end`); (status, headers, body) of the answer."
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        try:
            for ch in chunks: s.sendall(b'%x\r\n%s\r\n' % (len(ch), ch))
            if end: s.sendall(b'0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError): pass       # the server answered and stopped reading
        data = b''
        while b'\r\n\r\n' not in data:
            got = s.recv(65536)
            if not got: raise ConnectionError(f"the server closed the connection without an answer: {data[:200]!r}")
            data += got
        head, _, body = data.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(':') for l in lines[1:])}
        n = int(headers.get('content-length', 0))
        while len(body) < n and (got := s.recv(65536)): body += got
        return int(lines[0].split()[1]), headers, body

def test_edge_chunked_body_cannot_pass_the_size_limit(edge, reg, rows):
    "The limit counts the bytes as they stream in, whatever the transfer encoding: 413 before the body ends, nothing parsed or logged."
    c, port = edge
    rec = json.dumps({**_recs(rows)[0], 'occupation': 'x'*4000}).encode()
    status, headers, body = _raw_chunked(port, '/predict', [b'['] + [rec + b','] * 400, end=False,    # ~1.6 MB, never finished
                                         headers='X-Request-ID: chunk-raw\r\n')
    assert status == 413, body[:300]
    assert json.loads(body)['error'] == 'BodyTooLarge'
    r = c.post('/predict', content=(p for p in [b'['] + [rec + b','] * 400 + [rec + b']']),        # httpx: a generator goes chunked
               headers={'X-Request-ID': 'chunk-big'})
    _house(r, 413)
    r = c.post('/labels', content=(p for p in [b'{"labels": {'] + [b'"%d": "%s",' % (i, b'y'*4000) for i in range(400)] + [b'"z": 1}}']))
    _house(r, 413)                                                                               # every route, not only /predict
    r = c.post('/predict', content=(p for p in [b'['] + [rec + b','] * 9 + [rec + b']']),          # chunked under the limit: answered
               headers={'X-Request-ID': 'chunk-ok'})
    assert r.status_code == 200 and len(r.json()['predictions']) == 10, r.text[:300]
    _house(c.post('/predict', content=b'[' + b'1,' * 600_000 + b'1]', headers={'Content-Type': 'application/json', 'X-Request-ID': 'chunk-cl'}), 413)
    deadline, ok = time.time() + 30, [f"chunk-ok-{i}" for i in range(10)]
    while not set(ok) <= set(logged := reg.store.get_predictions('adult').request_id) and time.time() < deadline: time.sleep(0.05)
    assert set(ok) <= set(logged)                      # the log writes in order: anything answered before these is in too
    assert not {i for i in logged if i.startswith(('chunk-raw', 'chunk-big', 'chunk-cl'))}

def test_edge_no_redirect_to_a_foreign_host(edge):
    "A trailing slash is a 404 in the house shape, never a redirect built from the request's Host header."
    c, _ = edge
    for path in ('/health/', '/model/', '/admin/reload/'):
        r = c.get(path, headers={'Host': 'evil.example'}, follow_redirects=False)
        assert 'location' not in r.headers and r.status_code in (401, 404, 405), (path, r.status_code, r.headers)
    d = _house(c.get('/health/', headers={'Host': 'evil.example'}, follow_redirects=False), 404)
    assert 'evil' not in json.dumps(d)
    assert c.get('/health').status_code == 200

@pytest.mark.parametrize('path', ADMIN_ROUTES)
def test_edge_admin_token_is_checked_before_the_body(edge, path):
    "Every admin route (the feedback router's too) answers 401 to a request without a valid token before it reads the body."
    c, _ = edge
    for h in ({}, {'Authorization': 'Bearer wrong'}):
        for body in (b'{"version": ', b'not json at all', b'[' * 10_000):
            r = c.post(path, content=body, headers={'Content-Type': 'application/json', **h})
            d = _house(r, 401)
            assert r.headers['www-authenticate'] == 'Bearer' and d['error'] == 'Unauthorized'
    if path == '/admin/reload': return                     # takes no body
    r = c.post(path, content=b'{"version": ', headers={'Content-Type': 'application/json', 'Authorization': f'Bearer {TOKEN}'})
    d = _house(r, 422)                                     # with the token: the house 422 for the malformed body
    assert d['problems'] and d['problems'][0]['kind'] == 'json_invalid', d

BIG = [2**63, 2**70, -1, 0]

@pytest.mark.parametrize('path,field', [('/admin/promote', 'version'), ('/admin/promote', 'expected'), ('/admin/rollback', 'to_version'),
                                        ('/admin/rollback', 'expected'), ('/admin/shadow', 'version')])
def test_edge_integers_out_of_range_in_bodies(edge, reg, path, field):
    "Versions must be >= 1 and < 2**63: anything else is a JSON 422 naming the field, before the registry is asked."
    c, _ = edge
    before = reg.store.aliases('adult')
    for v in BIG:
        body = {field: v} if field != 'expected' else {'version': 1, 'expected': v}
        if path == '/admin/rollback' and field == 'expected': body = {'expected': v}
        d = _house(c.post(path, json=body, headers={'Authorization': f'Bearer {TOKEN}'}), 422)
        assert [p['column'] for p in d['problems']] == [field], (v, d)
    assert reg.store.aliases('adult') == before

def test_edge_integers_out_of_range_in_a_retrain_policy(edge):
    "A policy sent to `/admin/retrain` with counts or windows past 64 bits: a JSON 422 naming the field, not a 500 from NumPy."
    c, _ = edge
    for field in ('window_size', 'min_labels', 'n_boot', 'consecutive', 'min_eval_rows'):
        for v in (2**70, 2**63, -1):
            r = c.post('/admin/retrain', json={'policy': {field: v}}, headers={'Authorization': f'Bearer {TOKEN}'})
            d = _house(r, 422)
            assert d['column'] == field, (field, v, d)

def test_edge_integers_out_of_range_in_queries(edge):
    "`/monitor?version=` beyond 64 bits, negative or zero: a JSON 422 naming the field, not a plain-text 500."
    c, _ = edge
    for v in (2**70, 2**63, -3, 0, 'two'):
        d = _house(c.get(f'/monitor?version={v}'), 422)
        assert d['problems'][0]['column'] == 'version', d
    assert c.get('/monitor?version=1').status_code == 200

def test_edge_error_bodies_cap_echoed_values(edge, rows):
    "A 600 kB value comes back cut to 200 characters with the original length, on every route that refuses it."
    c, _ = edge
    big, auth = 'z' * 600_000, {'Authorization': f'Bearer {TOKEN}'}
    refusals = [c.post('/predict', json={**_recs(rows)[0], 'age': big}),                 # the schema's problem
                c.post('/predict', json={**_recs(rows)[0], 'age': [big]}),               # a nested value
                c.post('/predict', json=[big]),                                          # not a record
                c.post('/predict', json={**_recs(rows)[0]}, headers={'X-Request-ID': big[:40_000]}),
                c.post('/predict?proba=' + big[:40_000], json=_recs(rows)[0]),
                c.post('/admin/promote', json={'version': big}, headers=auth),           # FastAPI's validation
                c.post('/admin/promote', json={'version': 1, 'alias': big}, headers=auth),   # the store's ConfigError
                c.post('/labels', json={'labels': {big: 'x'}}),                          # the label batch's report
                c.post('/labels', json={'labels': [{'request_id': 'a', 'label': {'k': big}}]})]
    for r in refusals:
        assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
        assert len(r.content) < 5000, (r.request.url, r.status_code, len(r.content), r.text[:300])
        _house(r, r.status_code)
    d = refusals[0].json()
    p = d['problems'][0]
    assert len(p['value']) == 200 and p['value'].startswith('z'*150) and p['value'].endswith('[cut: 600000 characters]'), p['value']

def test_edge_label_batch_accepted_or_refused_whole(edge, reg, rows):
    "A batch with a repeated id, an unknown id or an invalid label writes nothing; the same batch fixed writes all of it."
    c, _ = edge
    ids = c.post('/predict', json=_recs(rows.iloc[:3]), headers={'X-Request-ID': 'whole'}).json()['request_ids']
    c.post('/admin/reload', headers={'Authorization': f'Bearer {TOKEN}'}); time.sleep(0.5)
    deadline = time.time() + 20
    while reg.store.get_predictions('adult').request_id.isin(ids).sum() < 3 and time.time() < deadline: time.sleep(0.05)
    def labelled(): return set(reg.store.labelled_predictions('adult').request_id) & set(ids)
    for bad in ([dict(request_id=ids[0], label='>50K'), dict(request_id=ids[0], label='<=50K')],          # repeated in the batch
                [dict(request_id=ids[0], label='>50K'), dict(request_id='never-logged', label='>50K')],   # unknown
                [dict(request_id=ids[0], label='>50K'), dict(request_id=ids[1], label='purple')]):        # not a class
        r = c.post('/labels', json={'labels': bad})
        assert r.status_code == 422 and not r.json()['ok'] and r.json()['accepted'] == [], r.text
        assert labelled() == set(), bad
    r = c.post('/labels', json={'labels': {i: '>50K' for i in ids}})
    assert r.status_code == 200 and sorted(r.json()['accepted']) == sorted(ids), r.text
    assert labelled() == set(ids)

def test_edge_every_refusal_has_the_house_shape(edge, rows):
    "Router, method, media type, size, token, validation, schema, conflict and the monitor's own refusals: each `{error, message, problems}`."
    c, _ = edge
    auth = {'Authorization': f'Bearer {TOKEN}'}
    for r, status in [(c.get('/nowhere'), 404), (c.get('/predict'), 405), (c.delete('/health'), 405),
                      (c.post('/predict', content=b'x', headers={'Content-Type': 'text/plain'}), 415),
                      (c.post('/predict', content=b''), 422), (c.post('/predict', content=b'{"a": '), 422),
                      (c.post('/predict', json={**_recs(rows)[0], 'age': 'old'}), 422),
                      (c.post('/predict', json=_recs(rows)[0], headers={'X-Request-ID': 'bad id!'}), 422),
                      (c.post('/admin/reload'), 401), (c.post('/admin/promote', json={}, headers=auth), 422),
                      (c.post('/admin/promote', json={'version': 999}, headers=auth), 404),
                      (c.get('/monitor?version=x'), 422), (c.post('/labels', json={'nope': 1}), 422)]:
        _house(r, status)

def test_edge_unexpected_error_is_a_json_500_without_internals(adult_bundle, sqlite_url):
    "An error nobody planned for is a JSON 500 in the house shape, without the exception's text or a traceback."
    from fastapi import APIRouter
    r = APIRouter()
    @r.get('/boom')
    def boom(): raise RuntimeError('secret internals /etc/passwd')
    with running(create_app(adult_bundle, sqlite_url, log=False, extra_routers=[r])) as c:
        res = c.get('/boom')
        d = _house(res, 500)
        assert d['error'] == 'InternalError' and 'secret' not in res.text and 'Traceback' not in res.text
        assert c.get('/health').status_code == 200               # the service goes on


# ------------------------------------------------------------------------------------------- explanations (?explain=true)

def _tree_line(n, include, seed=2):
    from threadpoolctl import threadpool_limits
    from assembly_line.datasets import load_example
    from assembly_line.line import AssemblyLine
    df = load_example('adult', n=n, seed=seed)
    with threadpool_limits(1):
        line = AssemblyLine('income', time_budget=10, seed=0, include=include, tune=False, deterministic=True, n_jobs=1).fit(df)
    return line, df

@pytest.fixture(scope='module')
def tree_bundle(tmp_path_factory):
    "A tree-only adult line (LightGBM + histogram boosting) saved as a bundle folder."
    line, df = _tree_line(1500, ['lightgbm', 'hist_gb'])
    return line, line.save(tmp_path_factory.mktemp('explain')/'tree'), df

def test_predict_explain_json_and_csv(tree_bundle, sqlite_url):
    line, bundle, df = tree_bundle
    rows = df.drop(columns='income').iloc[:20].reset_index(drop=True)
    recs = _recs(rows)
    with running(create_app(bundle, sqlite_url)) as c:
        j = c.post('/predict?explain=true&proba=true', json={'records': recs})
        one = c.post('/predict?explain=1', json=recs[0])
        v = c.post('/predict?explain=true&proba=true', content=rows.to_csv(index=False), headers={'Content-Type': 'text/csv'})
        plain = c.post('/predict', json=recs[0])
        bad = c.post('/predict?explain=true', json={**recs[0], 'age': 'forty'})
        bad_plain = c.post('/predict', json={**recs[0], 'age': 'forty'})
        missing = c.post('/predict?explain=true', json={k: x for k, x in recs[0].items() if k != 'education'})
        flag = c.post('/predict?explain=maybe', json=recs[0])
        _wait_for(lambda: Store(sqlite_url).count_predictions() == 42)
        page = c.get('/monitor')      # the served line's explanation drift, beside data drift
    assert j.status_code == 200, j.text
    d = j.json()
    p = line.predict_proba(rows)['>50K'].to_numpy()
    assert len(d['explanations']) == 20
    for e, q, pp in zip(d['explanations'], d['probabilities'], p):
        assert set(e['contributions']) == set(line.schema_.features)
        assert abs(sum(e['contributions'].values()) + e['base_value'] - q['>50K']) < 1e-6
        assert abs(q['>50K'] - pp) < 1e-9
    e1 = one.json()['explanations'][0]
    assert e1['contributions'] == pytest.approx(d['explanations'][0]['contributions'], abs=1e-9)
    assert e1['base_value'] == pytest.approx(d['explanations'][0]['base_value'], abs=1e-9)
    assert v.status_code == 200, v.text
    for a, b in zip(v.json()['explanations'], d['explanations']):
        assert a['contributions'] == pytest.approx(b['contributions'], abs=1e-9)
    assert 'explanations' not in plain.json()
    # bad input: refused exactly as /predict refuses it, naming the column
    assert bad.status_code == 422 and ('age', 'wrong_type') in _problems(bad)
    assert (bad.status_code, bad.json()) == (bad_plain.status_code, bad_plain.json())
    assert missing.status_code == 422 and 'education' in {p['column'] for p in missing.json()['problems']}
    assert flag.status_code == 422 and flag.json()['parameter'] == 'explain'
    # explained requests are logged like any other
    assert Store(sqlite_url).count_predictions() == 20 + 1 + 20 + 1
    assert page.status_code == 200 and 'id="explanation-drift"' in page.text, page.text[:500]
    assert 'Explanation drift: share of importance per column' in page.text and 'capital-gain' in page.text

@pytest.fixture(scope='module')
def mixed_line():
    "An adult line whose ensemble mixes a linear model with histogram boosting (the agnostic explainer's case)."
    from assembly_line.explain import LineExplainer
    line, df = _tree_line(800, ['linear', 'hist_gb'])
    assert LineExplainer(line).method == 'tree+permutation'
    return line, df

def test_explain_a_registered_line_with_a_linear_member(mixed_line, tmp_path, sqlite_url):
    "Background rows are drawn from the bundle's monitoring reference: no training rows needed, deterministic, adding up."
    from assembly_line.reference import make_reference, reference_background
    from assembly_line.explain import LineExplainer
    line, df = mixed_line
    X = df.drop(columns='income')
    reg = Registry(sqlite_url, root=tmp_path/'artifacts')
    mv = reg.register(line, 'mixed', alias='champion', card=False,
                      extra_files={'reference.json': make_reference(X, line.schema_).to_json()})
    rows = X.iloc[:4].reset_index(drop=True)
    with running(create_app('mixed', reg.store, registry_root=reg.root)) as c:
        r = c.post('/predict?explain=true&proba=true', json={'records': _recs(rows)})
        again = c.post('/predict?explain=true', json={'records': _recs(rows)})
    assert r.status_code == 200, r.text
    d = r.json()
    for e, q in zip(d['explanations'], d['probabilities']):
        assert set(e['contributions']) == set(line.schema_.features)
        assert abs(sum(e['contributions'].values()) + e['base_value'] - q['>50K']) < 1e-6
    assert any(abs(v) > 1e-6 for v in d['explanations'][0]['contributions'].values())
    # the same request gets the same explanations (the background is drawn once per loaded model, seeded) ...
    for a, b in zip(again.json()['explanations'], d['explanations']):
        assert a['contributions'] == pytest.approx(b['contributions'], abs=1e-9)
    # ... and it is the one drawn from the registered bundle's reference
    folder = reg.resolve('mixed@1')[1]
    local = LineExplainer(line, background=reference_background(folder, line.schema_.features)).explain(rows).to_frame(prefix='')
    assert [e['base_value'] for e in d['explanations']] == pytest.approx(local.base_value.tolist(), abs=1e-9)

def test_explain_refused_for_a_non_tree_line_without_a_reference(tmp_path, sqlite_url):
    line, df = _tree_line(400, ['linear'])
    with running(create_app(line.save(tmp_path/'lin'), sqlite_url)) as c:
        r = c.post('/predict?explain=true', json=_recs(df.drop(columns='income').iloc[:2]))
        ok = c.post('/predict', json=_recs(df.drop(columns='income').iloc[:2]))
    assert r.status_code == 409 and r.json()['error'] == 'ExplainUnavailable', r.text
    assert 'monitoring reference' in r.json()['message'] and '--train' in r.json()['expected'], r.json()
    assert str(tmp_path) not in r.text                 # the server's folders are not echoed
    assert ok.status_code == 200
