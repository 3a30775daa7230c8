"""Side-by-side benchmark of the prediction service from two (or more) code trees: the same requests to each, in one run,
so that the machine's speed, which moves from hour to hour, moves every side alike.

    git worktree add /tmp/before <commit>
    python benchmarks/bench_serve_ab.py --bundle PATH before=/tmp/before after=.  [--rounds 60] [--singles 400]

Each tree's `assembly_line.serve.serve` runs in its own subprocess (that tree first on `PYTHONPATH`), on its own SQLite
store, prediction log on. Batches: each round, for each tree in rotating order, a bare `line.predict_proba` of 1,000 rows
in this process, then the same rows as a JSON batch (with probabilities) and as CSV, through `http.client`; shares are
bare / service (ratio of medians and median of per-round ratios) and the line's own share of each round trip
(`Server-Timing`). Singles: each round, for each tree, a bare one-row `predict_proba`, then the same row through a raw
keep-alive socket; overhead = round trip - `Server-Timing` (`single_rt_p50`: the whole round trip). Prints tables; asserts nothing.
"""
import os
os.environ.setdefault('OMP_NUM_THREADS', '1')
import argparse, gc, http.client, json, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, str(Path(__file__).parent))
from bench_serve import RawClient, free_port, server_line_s

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('trees', nargs='+', help='name=path of a checkout of this project')
    ap.add_argument('--bundle', required=True, help='a saved line bundle (e.g. the one bench_serve.py fits)')
    ap.add_argument('--rounds', type=int, default=60, help='batch rounds')
    ap.add_argument('--singles', type=int, default=400, help='single-request rounds')
    a = ap.parse_args()
    warnings.filterwarnings('ignore')
    from threadpoolctl import threadpool_limits
    from assembly_line.line import AssemblyLine
    from assembly_line.datasets import load_example
    threadpool_limits(1)
    tmp = Path(tempfile.mkdtemp(prefix='bench-serve-ab-'))
    srvs = {}
    for t in a.trees:
        name, _, path = t.partition('=')
        port = free_port()
        code = (f"from assembly_line.serve import serve; serve({a.bundle!r}, port={port}, "
                f"store_url='sqlite:///{tmp/(name + '.sqlite')}')")
        env = dict(os.environ, PYTHONPATH=str(Path(path).resolve()), OMP_NUM_THREADS='1')
        srvs[name] = (subprocess.Popen([sys.executable, '-c', code], env=env, cwd=tmp), port)
    line = AssemblyLine.load(a.bundle)
    nb = min(a.rounds, 20)                                   # distinct 1,000-row batches, reused round by round
    test = load_example('adult', n=nb*1000 + a.singles + 30, seed=1).drop(columns='income', errors='ignore')
    recs = json.loads(test.to_json(orient='records'))
    gc.collect(); gc.freeze()
    conns, raws = {}, {}
    try:
        for name, (p, port) in srvs.items():
            t0 = time.time()
            while True:
                try:
                    c = http.client.HTTPConnection('127.0.0.1', port, timeout=120); c.request('GET', '/health')
                    c.getresponse().read(); break
                except OSError: time.sleep(0.3)
                if p.poll() is not None or time.time()-t0 > 120: raise SystemExit(f"{name}: the server did not start")
            conns[name], raws[name] = c, RawClient(port)
        names, rows = list(srvs), []
        def post(c, path, body, ct):
            t = time.perf_counter(); c.request('POST', path, body=body, headers={'Content-Type': ct}); r = c.getresponse(); r.read()
            t = time.perf_counter()-t
            assert r.status == 200
            return t, float(r.getheader('server-timing').split('dur=')[1])/1000
        for k in range(a.rounds):
            lo = (k % nb)*1000; df = test.iloc[lo:lo+1000]
            body, csv = json.dumps({'records': recs[lo:lo+1000]}).encode(), df.to_csv(index=False).encode()
            for name in names[k % len(names):] + names[:k % len(names)]:
                t = time.perf_counter(); line.predict_proba(df); b = time.perf_counter()-t
                (j, jl), (c_, cl) = post(conns[name], '/predict?proba=true', body, 'application/json'), post(conns[name], '/predict', csv, 'text/csv')
                rows.append(dict(tree=name, bare=b, json=j, json_line=jl, csv=c_, csv_line=cl))
        singles, whole = {n: [] for n in names}, {n: [] for n in names}
        base = nb*1000
        reqs = [RawClient.request_bytes('/predict?proba=true', json.dumps(r).encode()) for r in recs[base:]]
        for i in range(20):
            for n in names: raws[n].send(reqs[i])
        for i in range(a.singles):
            for n in names[i % len(names):] + names[:i % len(names)]:
                line.predict_proba(test.iloc[[base + 20 + i]])
                t = time.perf_counter(); r = raws[n].send(reqs[20 + i]); t = time.perf_counter()-t
                singles[n].append((t - server_line_s(r))*1000); whole[n].append(t*1000)
    finally:
        for p, _ in srvs.values(): p.terminate()
        for p, _ in srvs.values(): p.wait(60)
    d = pd.DataFrame(rows)
    out = []
    for name in names:
        g = d[d.tree == name]
        out.append(dict(tree=name, bare_ms=g.bare.median()*1e3, json_ms=g.json.median()*1e3, csv_ms=g.csv.median()*1e3,
                        json_share=g.bare.median()/g.json.median(), csv_share=g.bare.median()/g.csv.median(),
                        json_paired=(g.bare/g.json).median(), csv_paired=(g.bare/g.csv).median(),
                        json_own=(g.json_line/g.json).median(), csv_own=(g.csv_line/g.csv).median(),
                        single_rt_p50=np.percentile(whole[name], 50), single_p50=np.percentile(singles[name], 50), single_p90=np.percentile(singles[name], 90),
                        single_p99=np.percentile(singles[name], 99)))
    print(f"{a.rounds} batch rounds of 1,000 rows, {a.singles} single rounds; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs\n")
    print(pd.DataFrame(out).set_index('tree').T.to_string(float_format=lambda v: f"{v:9.3f}"))

if __name__ == '__main__': main()
