"""Benchmark of shadow serving (issue 17): what a challenger scored in shadow costs the champion's answers.

    python benchmarks/bench_shadow.py [--rows 5000] [--singles 300] [--batches 10] [--batch-size 1000] [--phases 2]

One real server (`serve.serve` in a subprocess, uvicorn, SQLite store, the prediction log on) serves adult v1; v2, a
different line, is switched in and out of shadow through `POST /admin/shadow` between phases, alternating (off, on, off,
on, ...), so both settings see the same machine load. Each phase sends `--singles` single records one after another
over one keep-alive `http.client` connection, then `--batches` JSON batches of `--batch-size` records; `--gap-ms` makes the
client pause after each single (and 10x that after each batch), as real traffic leaves gaps; 0 is a saturated service. Per setting it
prints the p50/p95 round trip of singles and the median batch time; for the shadow phases also how many answered rows
have their shadow row, and how long after the phase's last answer the shadow had written everything (its lag).
Prints tables; asserts nothing.
"""
import os
os.environ.setdefault('OMP_NUM_THREADS', '1')
import argparse, http.client, json, socket, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--rows', type=int, default=5000); ap.add_argument('--singles', type=int, default=300)
    ap.add_argument('--batches', type=int, default=10); ap.add_argument('--batch-size', type=int, default=1000)
    ap.add_argument('--phases', type=int, default=2, help="phases of each setting (off/on alternate)")
    ap.add_argument('--gap-ms', type=float, default=0., help="client pause after each answer (0: back to back, a saturated service)")
    a = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits
    from assembly_line.datasets import load_example
    from assembly_line.line import AssemblyLine
    from assembly_line.deploy import Registry
    from assembly_line.store import Store
    df = load_example('adult', n=a.rows, seed=0)
    with threadpool_limits(1):
        kw = dict(time_budget=20, tune=False, deterministic=True, n_jobs=1)
        v1 = AssemblyLine('income', include=['linear', 'hist_gb'], **kw).fit(df)
        v2 = AssemblyLine('income', include=['hist_gb'], seed=1, **kw).fit(df.drop(columns='capital-gain'))
    home = Path(tempfile.mkdtemp(prefix='bench-shadow-'))
    url = f"sqlite:///{home/'store.sqlite'}"
    reg = Registry(url, root=home/'artifacts')
    reg.register(v1, 'adult', alias='champion', card=False); reg.register(v2, 'adult', card=False)
    recs = json.loads(df.drop(columns='income').to_json(orient='records'))
    port, token = free_port(), 'bench'
    code = (f"from assembly_line.serve import serve; serve('adult', port={port}, store_url={url!r}, admin_token={token!r}, "
            f"registry_root={str(home/'artifacts')!r})")
    proc = subprocess.Popen([sys.executable, '-c', code], env=dict(os.environ, OMP_NUM_THREADS='1'))
    auth = {'Authorization': f'Bearer {token}', 'Content-Type': 'application/json'}
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    def call(method, path, body=None, headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse(); return r.status, r.read()
    try:
        t0 = time.time()
        while True:
            try:
                if call('GET', '/health')[0] == 200: break
            except OSError: conn.close(); time.sleep(0.2)
            if time.time() - t0 > 120: raise RuntimeError("the server did not start")
        rows, k = [], 0
        for ph in range(2*a.phases):
            on = ph % 2 == 1
            st, body = call('POST', '/admin/shadow', json.dumps({'version': 2 if on else None}).encode(), auth)
            assert st == 200, body
            single, batch, ids = [], [], []
            for i in range(a.singles):
                b = json.dumps(recs[(k := k+1) % len(recs)]).encode()
                t = time.perf_counter(); st, out = call('POST', '/predict', b, {'Content-Type': 'application/json'}); single.append(time.perf_counter()-t)
                ids += json.loads(out)['request_ids']
                if a.gap_ms: time.sleep(a.gap_ms/1000)
            for i in range(a.batches):
                lo = (i*a.batch_size) % max(1, len(recs) - a.batch_size)
                b = json.dumps({'records': recs[lo:lo+a.batch_size]}).encode()
                t = time.perf_counter(); st, out = call('POST', '/predict', b, {'Content-Type': 'application/json'}); batch.append(time.perf_counter()-t)
                ids += json.loads(out)['request_ids']
                if a.gap_ms: time.sleep(10*a.gap_ms/1000)
            t_end, lag, covered = time.perf_counter(), None, None
            if on:
                while True:
                    sh = json.loads(call('GET', '/health')[1])['shadow']
                    if sh['pending'] == 0: lag = time.perf_counter() - t_end; break
                    time.sleep(0.01)
                got = set(Store(url).shadow_predictions('adult', 2).request_id)
                covered = f"{len(got & set(ids))}/{len(ids)}"
            rows.append(dict(phase=ph, shadow='on' if on else 'off', single_p50_ms=np.median(single)*1000,
                             single_p95_ms=np.percentile(single, 95)*1000, batch_p50_ms=np.median(batch)*1000,
                             shadow_rows=covered, shadow_lag_s=lag))
        t = pd.DataFrame(rows)
        print(t.to_markdown(index=False, floatfmt='.2f'))
        print()
        print(t.groupby('shadow')[['single_p50_ms', 'single_p95_ms', 'batch_p50_ms']].median().to_markdown(floatfmt='.2f'))
        print(f"\nload average at the end: {os.getloadavg()}")
    finally:
        proc.terminate(); proc.wait(60)

if __name__ == '__main__': main()
