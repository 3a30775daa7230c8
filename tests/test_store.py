"""The store's contracts on SQLite and on a real PostgreSQL server: registry, alias history, prediction log,
late labels, monitoring results, append-only audit, bad URLs, failed writes, concurrent writers."""
import os, sys, json, signal, subprocess, textwrap, threading, time, hashlib, pickle
import datetime as dt
from pathlib import Path
import numpy as np, pandas as pd, pytest, sqlalchemy as sa
from assembly_line.core import StoreError, RegistryError, RegistryConflict, ConfigError
from assembly_line.database import SCHEMA_VERSION, mask_url
from assembly_line.logs import LabelResult
from assembly_line.store import Store
from assembly_line.datasets import load_example

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 9, tzinfo=UTC)
sha = lambda s: hashlib.sha256(s.encode()).hexdigest()

@pytest.fixture(scope='module')
def adult_rows():
    df = load_example('adult', n=40, seed=3).drop(columns='income')
    df.loc[0, 'age'] = np.nan
    return df.to_dict('records')

@pytest.fixture
def store(store_url):
    s = Store(store_url)
    yield s
    s.close()

def logged(store, adult_rows, n=10, model='adult_income', version=1, prefix='req'):
    rows = [dict(request_id=f"{prefix}-{i}", ts=T0 + dt.timedelta(minutes=i), model=model, version=version,
                 inputs=adult_rows[i % len(adult_rows)], outputs=dict(prediction=' <=50K', proba={' >50K': 0.1}),
                 latency_ms=2.5) for i in range(n)]
    return store.log_predictions(rows)

def raw(store, sql):
    with store.engine.begin() as c: return c.exec_driver_sql(sql)

# ---------------------------------------------------------------- opening

def test_open_creates_schema_and_reopen_keeps_data(store_url):
    with Store(store_url) as s:
        assert s.schema_version == SCHEMA_VERSION
        s.register_version('m', '/b/1', sha('1'), created_by='t')
    with Store(store_url) as s:                       # reopening creates nothing twice and loses nothing
        assert s.get_version('m').version == 1
        assert set(sa.inspect(s.engine).get_table_names()) >= {
            'model_versions', 'aliases', 'alias_history', 'predictions', 'labels', 'monitoring_results', 'audit_log', 'store_meta'}

def test_newer_schema_is_refused(store_url):
    with Store(store_url) as s: raw(s, f"UPDATE store_meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match='newer assembly_line'): Store(store_url)

def test_sqlite_connection_settings(sqlite_url):
    with Store(sqlite_url) as s, s.engine.connect() as c:
        assert c.exec_driver_sql('PRAGMA journal_mode').scalar() == 'wal'
        assert c.exec_driver_sql('PRAGMA synchronous').scalar() == 1
        assert c.exec_driver_sql('PRAGMA busy_timeout').scalar() == 30000
        assert c.exec_driver_sql('PRAGMA foreign_keys').scalar() == 1

def test_default_url_is_the_default_run(tmp_path, monkeypatch):
    monkeypatch.delenv('ASSEMBLY_LINE_STORE_URL', raising=False)
    monkeypatch.setenv('ASSEMBLY_LINE_HOME', str(tmp_path))
    with Store() as s: assert s.url == f"sqlite:///{(tmp_path/'default'/'store.sqlite').resolve()}"
    monkeypatch.setenv('ASSEMBLY_LINE_STORE_URL', f"sqlite:///{tmp_path/'other.sqlite'}")
    with Store() as s: assert s.url.endswith('other.sqlite')

@pytest.mark.parametrize('url,msg', [
    ('notaurl', 'not a database URL'),
    ('sqlite:////nonexistent/dir/x.db', 'cannot open the store'),
    ('nosuchdb://u:pw@h/d', 'cannot use this store URL'),
])
def test_bad_urls(url, msg):
    with pytest.raises(StoreError, match=msg) as e: Store(url)
    assert e.value.file is not None and 'pw' not in str(e.value)

def test_closed_port_names_url_with_password_masked():
    import socket
    with socket.socket() as so: so.bind(('127.0.0.1', 0)); port = so.getsockname()[1]
    with pytest.raises(StoreError, match='cannot open the store') as e:
        Store(f'postgresql://al:s3cret@127.0.0.1:{port}/line', busy_timeout=2)
    assert f'al:***@127.0.0.1:{port}/line' in str(e.value) and 's3cret' not in str(e.value)
    assert mask_url('notaurl:pw') == 'notaurl:pw' and mask_url('x://u:p@h') == 'x://u:***@h'

def test_store_pickles_by_url(sqlite_url):
    with Store(sqlite_url) as s: s.audit('t', 'a')
    s2 = pickle.loads(pickle.dumps(Store(sqlite_url)))
    assert len(s2.audit_log()) == 1

# ---------------------------------------------------------------- registry

def test_versions_count_per_name(store):
    assert [store.register_version('a', f'/a/{i}', sha(f'a{i}'), created_by='t').version for i in range(3)] == [1, 2, 3]
    assert store.register_version('b', '/b/1', sha('b1'), metrics={'rmse': np.float32(1.5)}).version == 1
    assert store.get_version('a').version == 3 and store.get_version('a', '2').uri == '/a/1'
    assert store.get_version('b').metrics == {'rmse': 1.5}
    lv = store.list_versions()
    assert lv[['name', 'version']].values.tolist() == [['a', 1], ['a', 2], ['a', 3], ['b', 1]]
    assert lv.created_at.dt.tz is not None

def test_register_validation(store):
    with pytest.raises(ConfigError, match='sha256'): store.register_version('a', '/a', 'abc')
    with pytest.raises(ConfigError, match='model name'): store.register_version('a@b', '/a', sha('x'))
    with pytest.raises(ConfigError, match='metrics must be JSON-able'): store.register_version('a', '/a', sha('x'), metrics={'f': object()})
    with pytest.raises(ConfigError, match='status'): store.register_version('a', '/a', sha('x'), status='gone')
    with pytest.raises(ConfigError, match='invalid alias'): store.register_version('a', '/a', sha('x'), alias='3')
    assert store.list_versions().empty and store.audit_log().empty   # nothing half-written

def test_aliases_history_and_rollback(store):
    for i in (1, 2, 3): store.register_version('m', f'/m/{i}', sha(str(i)), created_by='ci', alias='champion' if i == 1 else None)
    assert store.set_alias('m', 'champion', 3, who='ana', why='better') == 1
    assert store.set_alias('m', 'challenger', 2, who='bot', why='trained') is None
    assert store.set_alias('m', 'champion', 3, who='ana') == 3                  # no move, no history
    assert store.get_version('m@champion').version == 3 and store.get_version('m', 'challenger').aliases == ['challenger']
    assert store.set_alias('m', 'champion', 1, who='ana', why='rollback') == 3
    h = store.alias_history('m', 'champion')
    assert h[['new_version', 'who', 'why']].values.tolist() == [[1, 'ci', 'registered'], [3, 'ana', 'better'], [1, 'ana', 'rollback']]
    assert h.old_version.isna().tolist() == [True, False, False] and h.ts.is_monotonic_increasing
    assert store.delete_alias('m', 'challenger', who='ana', why='gone') == 2
    assert store.aliases('m') == {'champion': 1}
    assert store.alias_history('m', 'challenger').new_version.isna().tolist() == [False, True]
    assert store.audit_log('m', action='set_alias').details.map(lambda d: d['new_version']).tolist() == [1, 3, 2, 1]

def test_registry_errors_name_what_exists(store):
    store.register_version('m', '/m/1', sha('1'), alias='champion')
    with pytest.raises(RegistryError, match="unknown model 'nope'"): store.get_version('nope')
    with pytest.raises(RegistryError, match="has no version 5") as e: store.get_version('m', 5)
    assert e.value.expected == {'versions': [1], 'aliases': ['champion']}
    with pytest.raises(RegistryError, match="has no alias 'staging'"): store.get_alias('m', 'staging')
    with pytest.raises(RegistryError, match="has no alias 'staging'"): store.delete_alias('m', 'staging')
    with pytest.raises(RegistryError, match="has no version 9"): store.set_alias('m', 'champion', 9)
    with pytest.raises(RegistryError): store.set_status('m', 9, 'archived')
    assert store.get_alias('m', 'champion') == 1 and len(store.alias_history()) == 1   # failed moves changed nothing
    store.set_status('m', 1, 'archived', who='ana', why='old')
    assert store.get_version('m').status == 'archived'

def test_concurrent_registration_gets_distinct_versions(store):
    errors = []
    def work(k):
        try:
            for i in range(5): store.register_version('m', f'/m/{k}/{i}', sha(f'{k}{i}'))
        except Exception as e: errors.append(e)
    ts = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert not errors
    assert sorted(store.list_versions('m').version) == list(range(1, 16))

def test_alias_compare_and_swap(store):
    "A move with `expected` happens only if the alias still points there (None: no alias yet); a refused move changes nothing."
    for i in (1, 2, 3): store.register_version('m', f'/m/{i}', sha(str(i)), created_by='ci')
    assert store.set_alias('m', 'champion', 1, expected=None) is None            # first alias: expect none
    with pytest.raises(RegistryConflict, match="points at v1, not at no version") as e: store.set_alias('m', 'champion', 2, expected=None)
    assert (e.value.model, e.value.alias, e.value.expected_version, e.value.actual_version) == ('m', 'champion', None, 1)
    assert isinstance(e.value, RegistryError)
    assert store.set_alias('m', 'champion', 2, who='ana', expected=1) == 1
    with pytest.raises(RegistryConflict) as e: store.set_alias('m', 'champion', 3, expected=1)   # stale: someone moved it
    assert (e.value.expected_version, e.value.actual_version) == (1, 2)
    d = e.value.to_dict()                                                        # what a web layer answers with its 409
    assert {k: d[k] for k in ('error', 'model', 'alias', 'expected_version', 'actual_version')} == \
           dict(error='RegistryConflict', model='m', alias='champion', expected_version=1, actual_version=2)
    with pytest.raises(RegistryConflict): store.set_alias('m', 'champion', 2, expected=3)   # already there, but not as believed
    # the alias came back to v2 (A -> B -> A): a caller that read the history before the round trip is refused
    h = store.alias_history('m', 'champion'); last = int(h.id.iloc[-1])
    store.set_alias('m', 'champion', 3, expected=2); store.set_alias('m', 'champion', 2, expected=3)
    with pytest.raises(RegistryConflict, match='moved since'): store.set_alias('m', 'champion', 1, expected=2, expected_move=last)
    n_hist, n_audit = len(store.alias_history()), len(store.audit_log())
    assert store.set_alias('m', 'champion', 1, expected=2, expected_move=int(store.alias_history().id.iloc[-1])) == 2
    assert store.alias_history('m', 'champion').new_version.tolist() == [1, 2, 3, 2, 1]      # refused moves left no trace
    assert (len(store.alias_history()), len(store.audit_log())) == (n_hist + 1, n_audit + 1)
    assert store.set_alias('m', 'champion', 3) == 1                                # default: no check (back-compat)
    with pytest.raises(RegistryConflict): store.delete_alias('m', 'champion', expected=1)
    assert store.delete_alias('m', 'champion', expected=3) == 3 and store.aliases('m') == {}
    with pytest.raises(ConfigError, match='expected'): store.set_alias('m', 'champion', 1, expected='two')

CAS_WORKER = textwrap.dedent("""
    import sys, os, json, time, random
    from assembly_line.store import Store
    from assembly_line.core import RegistryConflict
    url, tag, n, go, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == 'first'
    s = Store(url); rnd = random.Random(tag); out = dict(ok=[], conflicts=[], errors=[])
    print('ready', flush=True)
    while not os.path.exists(go): time.sleep(0.001)
    if first:     # every worker tries to create the alias; exactly one may
        try: s.set_alias('m', 'champion', int(tag), expected=None, why=tag); out['ok'].append(None)
        except RegistryConflict as e: out['conflicts'].append([e.expected_version, e.actual_version])
    for i in range(0 if first else n):
        cur = s.get_alias('m', 'champion')
        to = rnd.choice([v for v in range(1, 6) if v != cur])
        try: s.set_alias('m', 'champion', to, expected=cur, why=f"{tag}-{i} from {cur}"); out['ok'].append(cur)
        except RegistryConflict as e: out['conflicts'].append([e.expected_version, e.actual_version])
        except Exception as e: out['errors'].append(repr(e))
    print(json.dumps(out), flush=True)
""")

def _cas_workers(tmp_path, url, n_workers, n, first=False):
    script = tmp_path/'cas.py'; script.write_text(CAS_WORKER)
    go = tmp_path/f'go-{first}'
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ps = [subprocess.Popen([sys.executable, str(script), url, str(k + 1), str(n), str(go), 'first' if first else 'moves'],
                           env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(n_workers)]
    for p in ps: assert p.stdout.readline().strip() == 'ready', p.stderr.read()
    go.touch()                                           # all start at once: as much contention as the machine allows
    outs = []
    for p in ps:
        o, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(json.loads(o.strip().splitlines()[-1]))
    return outs

def _chain_ok(h):
    "Every move starts where the previous one ended."
    new = h.new_version.tolist()
    return h.old_version.tolist()[1:] == new[:-1]

def test_concurrent_processes_compare_and_swap_lose_no_update(store_url, tmp_path):
    "Processes racing on one alias: the first one creates it, then every acknowledged move is in the history exactly where its caller expected it."
    s = Store(store_url)
    for i in range(1, 6): s.register_version('m', f'/m/{i}', sha(str(i)))
    outs = _cas_workers(tmp_path, store_url, 4, 0, first=True)
    assert sum(len(o['ok']) for o in outs) == 1 and sum(len(o['conflicts']) for o in outs) == 3   # one creator, three conflicts
    creator = s.get_alias('m', 'champion')
    assert all(c == [None, creator] for o in outs for c in o['conflicts'])
    outs = _cas_workers(tmp_path, store_url, 4, 30)
    assert not [e for o in outs for e in o['errors']]
    h = s.alias_history('m', 'champion')
    moves = h.iloc[1:]
    assert len(moves) == sum(len(o['ok']) for o in outs)                # every acknowledged move is there, and nothing else
    assert _chain_ok(h) and h.new_version.iloc[-1] == s.get_alias('m', 'champion')
    assert moves.old_version.tolist() == [int(w.split(' from ')[1]) for w in moves.why]   # each from the version its caller read
    assert all(exp != act for o in outs for exp, act in o['conflicts'])
    s.close()

# ---------------------------------------------------------------- predictions

def test_log_and_read_predictions(store, adult_rows):
    ids = logged(store, adult_rows, 10)
    ids += store.log_predictions([dict(ts=T0 + dt.timedelta(minutes=30), model='adult_income', version=2,
                                       inputs=adult_rows[1], outputs={'prediction': ' >50K'})])
    assert len(ids) == 11 and len(ids[-1]) == 32
    p = store.get_predictions('adult_income')
    assert p.columns.tolist() == ['request_id', 'ts', 'model', 'version', 'inputs', 'outputs', 'latency_ms']
    assert p.request_id.tolist() == ids and str(p.ts.dt.tz) == 'UTC'
    assert p.inputs[0]['age'] is None and p.inputs[1] == json.loads(json.dumps(adult_rows[1]))
    assert store.get_predictions(version=2).request_id.tolist() == [ids[-1]]
    assert store.get_predictions(last=2).request_id.tolist() == ['req-9', ids[-1]]
    w = store.get_predictions(start='2024-05-01 09:02', end=dt.datetime(2024, 5, 1, 9, 5))  # naive = UTC
    assert w.request_id.tolist() == ['req-2', 'req-3', 'req-4']
    assert store.get_predictions(model='other').empty
    e = store.get_predictions(last=3, expand=True)
    assert {'age', 'workclass', 'output_prediction', 'output_proba'} <= set(e.columns) and 'inputs' not in e
    assert store.count_predictions('adult_income', 1) == 10
    with pytest.raises(ConfigError, match='empty time window'): store.get_predictions(start=T0, end=T0)
    with pytest.raises(ConfigError, match='positive integer'): store.get_predictions(last=0)

def test_sqlite_fast_insert_writes_what_sqlalchemy_writes(tmp_path, adult_rows):
    "SQLite's driver-level prediction insert stores byte for byte what SQLAlchemy's `insert` does, and reads back the same."
    from assembly_line.database import predictions
    from assembly_line.logs import prediction_rows
    shared = dt.datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5)))  # one object, many rows
    odd = [dict(age=np.float64(41.5), name='ünïcødé "q"', n=np.int64(7), nan=float('nan'), none=None, flag=True, big=2**60)]
    rows = [dict(request_id=f"r-{i}", model='m', version=[1, None, np.int64(3)][i % 3], inputs=(adult_rows + odd)[i % 41],
                 outputs=dict(prediction=['<=50K', 1.5, None][i % 3], proba={'a': 0.25, 'b': 0.75}),
                 latency_ms=[2.5, None, 3][i % 3],
                 ts=[shared, dt.datetime(2024, 1, 2, 3, 4, 5), pd.Timestamp('2024-06-01 12:00:00.5', tz='Europe/Paris'),
                     '2024-02-29T23:59:59.999999+01:00', None][i % 5]) for i in range(250)]   # 2 full INSERTs of 100 and a rest
    fast, slow = Store(f"sqlite:///{tmp_path/'fast.sqlite'}"), Store(f"sqlite:///{tmp_path/'slow.sqlite'}")
    fast.log_predictions(rows)
    now = dt.datetime.now(dt.timezone.utc)
    with slow._writer.begin() as c: c.execute(predictions.insert(), prediction_rows(rows, now))
    q = "SELECT id, request_id, ts, model, version, inputs, outputs, latency_ms FROM predictions ORDER BY id"
    a, b = raw(fast, q).fetchall(), raw(slow, q).fetchall()
    assert len(a) == len(b) == 250
    for x, y, r in zip(a, b, rows):
        if r['ts'] is None: x, y = x[:2] + x[3:], y[:2] + y[3:]        # "now" differs between the two writes
        assert x == y
    stamped = {r['request_id'] for r in rows if r['ts'] is not None}
    pf, ps = [p[p.request_id.isin(stamped)].set_index('request_id').sort_index() for p in (fast.get_predictions(), slow.get_predictions())]
    pd.testing.assert_frame_equal(pf, ps)
    assert pf.ts['r-0'] == shared and pf.inputs['r-40']['nan'] is None and pf.inputs['r-40']['big'] == 2**60
    with pytest.raises(StoreError, match='cannot be stored'):
        fast.log_predictions([dict(model='m', inputs={'x': object()}, outputs={})])
    assert fast.count_predictions() == 250

def test_prediction_batches_are_all_or_nothing(store, adult_rows):
    logged(store, adult_rows, 5)
    before = store.get_predictions()
    ok = dict(model='adult_income', version=1, inputs=adult_rows[0], outputs={'prediction': 'x'})
    with pytest.raises(StoreError, match='already logged') as e:
        store.log_predictions([dict(ok, request_id='new-1'), dict(ok, request_id='req-3')])
    assert e.value.value == ['req-3']
    with pytest.raises(StoreError, match='repeated in one batch'):
        store.log_predictions([dict(ok, request_id='r'), dict(ok, request_id='r')])
    with pytest.raises(StoreError, match='cannot be stored'):
        store.log_predictions([dict(ok, request_id='new-2'), dict(ok, request_id='new-3', inputs={'x': object()})])
    with pytest.raises(StoreError, match='inputs must be a dict') as e:
        store.log_predictions([ok, dict(ok, inputs='age=3')])
    assert e.value.row == 1 and e.value.column == 'inputs'
    with pytest.raises(StoreError, match='unknown field'): store.log_predictions([dict(ok, input={})])
    with pytest.raises(StoreError, match='version must be an integer'): store.log_predictions([dict(ok, version='1')])
    pd.testing.assert_frame_equal(store.get_predictions(), before)
    assert store.log_predictions([]) == []

def test_predictions_from_a_dataframe(store, adult_rows):
    df = pd.DataFrame(dict(model='m', version=1, inputs=adult_rows[:3], outputs=[{'prediction': 1.5}] * 3))
    assert len(store.log_predictions(df)) == 3

# ---------------------------------------------------------------- labels

def test_labels_policy_and_report(store, adult_rows):
    logged(store, adult_rows, 6)
    res = store.add_labels([('req-0', ' >50K'), ('req-1', ' <=50K'), ('ghost', ' >50K'), ('req-1', ' >50K'),
                            ('req-2', 3), ('req-3', None), ('req-4', [1]), (7, 'x')], source='crm')
    assert isinstance(res, LabelResult) and not res.ok
    assert res.accepted == ['req-0', 'req-1'] and res.unknown == ['ghost'] and res.duplicate == ['req-1']
    reasons = {i['request_id']: i['reason'] for i in res.invalid}
    assert set(reasons) == {'req-2', 'req-3', 'req-4', 7}
    assert 'expected text' in reasons['req-2'] and reasons['req-3'] == 'missing label' and 'one value' in reasons['req-4']
    assert len(res.problems) == 6 and json.dumps(res.to_dict())
    with pytest.raises(StoreError, match=r'6 label\(s\) refused, 2 written') as e: res.raise_for_problems()
    assert len(e.value.problems) == 6
    # first label wins; nothing is changed by a refused label
    again = store.add_labels({'req-0': ' <=50K'})
    assert again.duplicate == ['req-0'] and again.accepted == []
    lp = store.labelled_predictions()
    assert lp.set_index('request_id').label.to_dict() == {'req-0': ' >50K', 'req-1': ' <=50K'}
    assert lp.label_source.tolist() == ['crm', 'crm'] and str(lp.label_ts.dt.tz) == 'UTC'
    # explicit overwrite, audited with old and new
    ow = store.add_labels(pd.DataFrame(dict(request_id=['req-0'], label=[' <=50K'])), overwrite=True, who='ana', source='fix')
    assert ow.ok and ow.overwritten == ['req-0']
    assert store.labelled_predictions().set_index('request_id').label['req-0'] == ' <=50K'
    a = store.audit_log(action='overwrite_labels')
    assert a.actor.tolist() == ['ana'] and a.details[0]['changes'] == [{'request_id': 'req-0', 'old': ' >50K', 'new': ' <=50K'}]

def test_labels_classes_and_numeric_predictions(store, adult_rows):
    store.log_predictions([dict(request_id=f'n{i}', model='reg', version=1, inputs=adult_rows[i], outputs={'prediction': 1.5 * i})
                           for i in range(3)] + [dict(request_id='c0', model='clf', inputs=adult_rows[0], outputs={'prediction': 1})])
    res = store.add_labels([('n0', 2), ('n1', np.float64(3.5)), ('n2', 'high'), ('c0', 2)], classes=None)
    assert res.accepted == ['n0', 'n1', 'c0'] and [i['request_id'] for i in res.invalid] == ['n2']
    logged(store, adult_rows, 2)
    res = store.add_labels([{'request_id': 'req-0', 'label': ' >50K'}, {'request_id': 'req-1', 'label': 'rich'}],
                           classes=[' <=50K', ' >50K'])
    assert res.accepted == ['req-0'] and 'not one of the classes' in res.invalid[0]['reason']
    assert store.labelled_predictions(model='reg', expand=True).label.tolist() == [2, 3.5]
    assert store.labelled_predictions(last=1).request_id.tolist() == ['c0']          # logged now, the latest
    assert store.labelled_predictions('adult_income', last=1).request_id.tolist() == ['req-0']
    with pytest.raises(ConfigError, match='request_id and label'): store.add_labels(pd.DataFrame(dict(id=[1])))

# ---------------------------------------------------------------- monitoring and audit

def test_monitoring_results(store):
    base = dict(model='m', version=1, window_start=T0, window_end=T0 + dt.timedelta(days=1), kind='data_drift')
    assert store.record_monitoring([dict(base, column='age', method='psi', statistic=np.float64(0.3), threshold=0.2,
                                         bins=np.linspace(0, 1, 5), drifted=np.True_),
                                    dict(base, column='sex', method='chi2', statistic=1.0, threshold=0.05, drifted=False),
                                    dict(base, kind='performance', method='roc_auc', statistic=0.88, details={'n': 120})]) == 3
    m = store.monitoring_results('m', kind='data_drift')
    assert m.column.tolist() == ['age', 'sex'] and m.drifted.tolist() == [True, False]
    assert m.bins[0] == [0, 0.25, 0.5, 0.75, 1.0] and m.window_start[0] == pd.Timestamp(T0)
    assert store.monitoring_results(column='sex').method.tolist() == ['chi2']
    assert store.monitoring_results(last=1).kind.tolist() == ['performance']
    for bad, msg in [(dict(base), 'method is required'), (dict(base, method='psi', statistic='x'), 'statistic must be a number'),
                     (dict(base, method='psi', drifted='yes'), 'drifted must be'), (dict(base, method='psi', colum='a'), 'unknown field')]:
        with pytest.raises(StoreError, match=msg): store.record_monitoring([dict(base, column='ok', method='ks'), bad])
    assert len(store.monitoring_results()) == 3

def test_audit_is_append_only(store):
    store.register_version('m', '/m/1', sha('1'), alias='champion', created_by='ci')
    i = store.audit('feedback', 'retrain_triggered', 'm', 1, details={'psi': np.float64(0.4)})
    log = store.audit_log()
    assert log.action.tolist() == ['register', 'set_alias', 'retrain_triggered'] and log.id.iloc[-1] == i
    assert store.audit_log(actor='feedback').details[0] == {'psi': 0.4}
    stmts = ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log WHERE id = 1",
             "UPDATE alias_history SET new_version = 99", "DELETE FROM alias_history"]
    if store.dialect == 'postgresql': stmts += ["TRUNCATE audit_log", "TRUNCATE alias_history"]
    for sql in stmts:
        with pytest.raises(sa.exc.DatabaseError, match='append-only'): raw(store, sql)
    pd.testing.assert_frame_equal(store.audit_log(), log)
    assert len(store.alias_history()) == 1
    assert not [m for m in dir(Store) if m.startswith(('update_', 'delete_audit', 'delete_history', 'clear'))]
    with pytest.raises(ConfigError): store.audit('', 'x')

# ---------------------------------------------------------------- processes

WRITER = textwrap.dedent("""
    import sys
    from assembly_line.store import Store
    url, tag, n, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    s = Store(url)
    for b in range(0, n, batch):
        s.log_predictions([dict(request_id=f"{tag}-{i}", model='m', version=1, inputs={'i': i, 'tag': tag},
                                outputs={'prediction': i % 2}) for i in range(b, min(n, b + batch))])
        if b == 0: print('ready', flush=True)
""")

def _writer(tmp_path, url, tag, n, batch):
    script = tmp_path/'writer.py'; script.write_text(WRITER)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(script), url, tag, str(n), str(batch)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

@pytest.mark.slow
def test_two_processes_write_the_same_sqlite_store(sqlite_url, tmp_path):
    Store(sqlite_url).close()
    ps = [_writer(tmp_path, sqlite_url, tag, 3000, 50) for tag in ('a', 'b')]
    for p in ps: assert p.wait(120) == 0, p.stderr.read()
    s = Store(sqlite_url)
    p = s.get_predictions()
    assert len(p) == 6000 and p.request_id.is_unique
    assert set(p.request_id) == {f"{t}-{i}" for t in 'ab' for i in range(3000)}

@pytest.mark.slow
def test_killed_writer_leaves_complete_batches_only(sqlite_url, tmp_path):
    Store(sqlite_url).close()
    p = _writer(tmp_path, sqlite_url, 'k', 400_000, 100_000)
    assert p.stdout.readline().strip() == 'ready'
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL); p.wait(30)
    n = Store(sqlite_url).count_predictions()
    assert n % 100_000 == 0 and n >= 100_000, n     # whole batches only, the first one kept

@pytest.mark.slow
def test_log_predictions_benchmark(sqlite_url, adult_rows, capsys):
    "Prints µs per logged prediction on SQLite WAL (a figure, not a timed assertion)."
    s = Store(sqlite_url)
    for n in (100, 1000, 10000):
        rows = [dict(model='m', version=1, inputs=adult_rows[i % 40], outputs={'prediction': ' <=50K', 'proba': {' >50K': 0.2}},
                     latency_ms=1.0) for i in range(n)]
        t = time.perf_counter(); s.log_predictions(rows); us = (time.perf_counter() - t) / n * 1e6
        with capsys.disabled(): print(f"\nlog_predictions batch={n}: {us:.1f} µs/row (SQLite WAL, synchronous=NORMAL)")
    assert s.count_predictions() == 11100

def test_jsonable_makes_builtin_subclasses_plain():
    "numpy.str_ (class labels), str/int enums and numpy floats become the plain builtins that orjson and JSON readers expect."
    import enum, orjson
    from assembly_line.core import jsonable
    class Colour(str, enum.Enum): RED = 'red'
    class Size(enum.IntEnum): BIG = 3
    got = jsonable({'labels': [np.str_('>50K'), Colour.RED], 'n': Size.BIG, 'p': np.float64(0.25), 'flag': np.bool_(True)})
    assert got == {'labels': ['>50K', 'red'], 'n': 3, 'p': 0.25, 'flag': True}
    assert [type(v) for v in got['labels']] == [str, str] and type(got['n']) is int and type(got['p']) is float
    assert orjson.loads(orjson.dumps({k: 1 for k in got['labels']})) == {'>50K': 1, 'red': 1}   # plain str keys
