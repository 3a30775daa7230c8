"""The prediction log as a spool: a service killed with SIGKILL under load loses no acknowledged prediction and
duplicates none (real uvicorn, on SQLite and on PostgreSQL); torn and foreign lines are skipped with a report; ingest is idempotent."""
import datetime as dt, json, shutil, signal, threading, time
import pytest

httpx = pytest.importorskip('httpx')
from assembly_line.store import Store
from assembly_line.predlog import PredictionLog, batch_line, ingest, segments, spool_folder
from servers import serving_process

NOW = dt.datetime(2026, 12, 3, 12, tzinfo=dt.timezone.utc)

def _line(tag, n=3):
    return batch_line([f"{tag}-{i}" for i in range(n)], 'm', 1, NOW, [{'x': i, 'tag': tag} for i in range(n)], ['a']*n,
                      [[.25, .75]]*n, ['a', 'b'], 1.0)

def _client(base, recs, acked, stop, size=5):
    "One client: batches of `size` records until stopped or the server is gone; keeps the ids of every 200 answer."
    with httpx.Client(base_url=base, timeout=30) as c:
        k = 0
        while not stop.is_set():
            lo = (k*size) % (len(recs) - size); k += 1
            try: r = c.post('/predict', json=recs[lo:lo+size])
            except httpx.TransportError: return            # killed: this request was never answered
            if r.status_code == 200: acked.extend(r.json()['request_ids'])

def test_sigkill_under_load_loses_no_acknowledged_prediction(adult_bundle, adult_line, store_url, tmp_path, monkeypatch):
    url = store_url
    monkeypatch.setenv('ASSEMBLY_LINE_PREDLOG_DIR', str(tmp_path/'spools'))   # PostgreSQL's spool (SQLite's sits by its file)
    Store(url).close()
    recs = json.loads(adult_line[1].drop(columns='income').iloc[:200].to_json(orient='records'))
    acked, stop = [], threading.Event()
    with serving_process(adult_bundle, url, log_interval=0.05) as (proc, base):
        clients = [threading.Thread(target=_client, args=(base, recs, acked, stop)) for _ in range(20)]
        for t in clients: t.start()
        t0 = time.time()
        while len(acked) < 1500 and time.time() - t0 < 60: time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)                   # no lifespan shutdown, nothing flushed: whatever is in memory is gone
        proc.wait(30)
        stop.set()
        for t in clients: t.join(30)
    assert len(acked) >= 1500, len(acked)
    left = segments(spool_folder(url))
    assert left, "the kill left nothing in the spool: the test did not meet a log in flight"
    with serving_process(adult_bundle, url, log_interval=0.05) as (proc, base):   # the restart ingests what the killed run left
        rep = ingest(url)                                   # and a reader's ingest (waits for the service's)
        health = httpx.get(f"{base}/health", timeout=30).json()['logging']
    logged = Store(url).get_predictions()['request_id']
    assert rep.error is None and health['segments'] == 0, (rep, health)
    missing = set(acked) - set(logged)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged predictions lost"
    assert logged.is_unique and len(acked) == len(set(acked))
    assert len(set(logged) - set(acked)) <= 20*5             # at most the requests in flight at the kill (logged, never answered)

def test_torn_and_foreign_lines_are_skipped_with_a_report(tmp_path):
    url = f"sqlite:///{tmp_path/'s.sqlite'}"
    folder = spool_folder(url); folder.mkdir()
    torn = _line('c')
    (folder/f"{1:020d}-1-00000001.seg").write_bytes(_line('a') + b'garbage\n' + _line('b') + torn[:len(torn)//3])
    (folder/f"{2:020d}-1-00000002.seg").write_bytes(_line('d'))
    rep = ingest(url)
    assert (rep.rows, len(rep.segments), rep.left, rep.error) == (9, 2, 0, None)
    assert len(rep.problems) == 2 and 'line 2' in rep.problems[0] and 'line 4' in rep.problems[1] and 'torn' in rep.problems[1]
    assert sorted({r.split('-')[0] for r in Store(url).get_predictions().request_id}) == ['a', 'b', 'd']

def test_ingest_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path/'s.sqlite'}"
    folder = spool_folder(url); folder.mkdir()
    seg = folder/f"{1:020d}-1-00000001.seg"
    seg.write_bytes(_line('a') + _line('b'))
    shutil.copy(seg, tmp_path/'copy')
    assert ingest(url).rows == 6 and not seg.exists()
    shutil.copy(tmp_path/'copy', seg)                        # a crash between the insert and the removal leaves the segment
    (folder/f"{2:020d}-1-00000002.seg").write_bytes(_line('b') + _line('c'))   # and a repeat of an earlier batch
    rep = ingest(url)
    assert (rep.rows, rep.skipped, rep.left) == (3, 9, 0)
    st = Store(url)
    assert st.count_predictions() == 9 and st.get_predictions().request_id.is_unique
    assert st.get_predictions().set_index('request_id').loc['c-2', 'outputs'] == {'prediction': 'a', 'proba': {'a': .25, 'b': .75}}

def test_a_live_segment_is_read_but_left_to_its_writer(tmp_path):
    "A reader in another process (`include_open`) stores a live segment's whole lines and leaves the file; the writer's ingest then skips them."
    url = f"sqlite:///{tmp_path/'s.sqlite'}"
    lg = PredictionLog(url, interval=3600, max_age=3600, start=False)
    try:
        lg.append(['x-0', 'x-1'], 'm', 1, NOW, [{'x': 0}, {'x': 1}], ['a', 'b'])
        assert [live for _, live in segments(lg.folder)] == [True]
        assert ingest(url).rows == 0                         # the writer holds it
        rep = ingest(url, include_open=True)
        assert (rep.rows, rep.left, rep.problems) == (2, 1, [])
        lg.append(['x-2'], 'm', 1, NOW, [{'x': 2}], ['a'])
        rep = lg.ingest()
        assert (rep.rows, rep.skipped, lg.stats()['pending'], lg.stats()['segments']) == (1, 2, 0, 0)
    finally: lg.close()
    assert Store(url).count_predictions() == 3

def test_cli_monitor_ingests_a_running_service_spool_first(adult_line, tmp_path, capsys):
    "`assembly-line monitor` stores the predictions a service has answered (its live segment too) before it reads the log."
    from assembly_line.cli import main
    from assembly_line.deploy import Registry
    from assembly_line.reference import make_reference
    line, df = adult_line
    url = f"sqlite:///{tmp_path/'store.sqlite'}"
    X = df.drop(columns='income').iloc[:50]
    ref = make_reference(X, line.schema_, predictions=line.predict_proba(X))
    Registry(url, root=tmp_path/'artifacts').register(line, 'adult', alias='champion', card=False,
                                                      extra_files={'reference.json': ref.to_json()})
    lg = PredictionLog(url, interval=3600, max_age=3600, start=False)      # a service that is still running
    try:
        p = line.predict_proba(X)
        lg.append([f"r{i}" for i in range(50)], 'adult', 1, NOW, json.loads(X.to_json(orient='records')),
                  line.predict(X).tolist(), p.to_numpy(), list(p.columns), 2.0)
        assert Store(url).count_predictions('adult') == 0
        rc = main(['monitor', 'adult', '--store', url, '--root', str(tmp_path/'artifacts'), '--out', str(tmp_path/'m.html')])
        assert rc == 0, capsys.readouterr().err
        assert Store(url).count_predictions('adult') == 50 and (tmp_path/'m.html').exists()
    finally: lg.close()
    assert Store(url).count_predictions('adult') == 50                    # the service's own ingest then skips them
