"""Where a single request's service overhead goes (issue 5): the service's own work versus the machine waking up.

    python benchmarks/bench_wakeup.py [--bundle PATH] [--requests 300]

Starts the real service (`assembly_line.serve.create_app` under uvicorn, subprocess, loopback, one keep-alive
connection through `http.client`) with the line's work replaced by nothing: `prepare` returns its input and the
predictor returns constant scores, so a request runs everything the service does around the line (HTTP, FastAPI,
parsing, building the frame from the JSON record, the hop to the model thread and back, ids, the log entry, the
response) and no model. The overhead per request is the round trip minus the `Server-Timing` line time (≈ 0 here).

It sends the same requests with the client pausing between them for 0 to 30 ms (sleeping, so both processes go idle
as they do while a real line works), and once with the client busy-waiting 10 ms (only the server idles). If the
figure grows with the pause while the work stays the same, the growth is the machine waking idle CPUs and threads,
not the service's code. Prints a table; asserts nothing.
"""
import os
os.environ.setdefault('OMP_NUM_THREADS', '1')
import argparse, http.client, json, socket, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np

SERVER = r'''
import sys, numpy as np, uvicorn
from assembly_line import serve as S, line as L
bundle, port, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
L.AssemblyLine.prepare = lambda self, df, mode='lenient': df                          # no cleaning, no validation
L.WeightedFolds.predict_scores = lambda self, X: np.full((len(X), len(self.classes)), 1/len(self.classes))  # no model
uvicorn.run(S.create_app(bundle, store_url=url, freeze_gc=True), host='127.0.0.1', port=port, log_level='warning', access_log=False)
'''

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--bundle', help='a saved classification bundle (else fit a small HistGradientBoosting line on adult)')
    ap.add_argument('--requests', type=int, default=300, help='requests per pause setting')
    a = ap.parse_args()
    warnings.filterwarnings('ignore')
    from assembly_line.datasets import load_example
    tmp = Path(tempfile.mkdtemp(prefix='bench-wakeup-'))
    if a.bundle: bundle = Path(a.bundle)
    else:
        from assembly_line.line import AssemblyLine
        line = AssemblyLine('income', time_budget=60, include=['hist_gb'], tune=False, ensemble=False, seed=0)
        bundle = line.fit(load_example('adult', n=2000, seed=0)).save(tmp/'adult_hgb')
    test = load_example('adult', n=a.requests, seed=1).drop(columns='income')
    bodies = [json.dumps(r).encode() for r in json.loads(test.to_json(orient='records'))]
    port = free_port()
    srv = subprocess.Popen([sys.executable, '-c', SERVER, str(bundle), str(port), f"sqlite:///{tmp/'store.sqlite'}"],
                           env=dict(os.environ, OMP_NUM_THREADS='1'))
    try:
        t0 = time.time()
        while True:
            try:
                c = http.client.HTTPConnection('127.0.0.1', port, timeout=60); c.request('GET', '/health')
                r = c.getresponse(); r.read()
                if r.status == 200: break
            except (OSError, http.client.HTTPException): pass
            if srv.poll() is not None or time.time()-t0 > 120: raise SystemExit("the server did not start")
            time.sleep(0.1)
        def one(body)->float:
            t = time.perf_counter()
            c.request('POST', '/predict?proba=true', body=body, headers={'Content-Type': 'application/json'})
            r = c.getresponse(); r.read(); rt = time.perf_counter()-t
            assert r.status == 200, r.status
            return rt - float(r.getheader('server-timing').split('dur=')[1])/1000
        for b in bodies[:50]: one(b)                     # warm up
        rows = []
        for pause in (0, 0.002, 0.01, 0.03, 'busy 10 ms', 0):
            ov = []
            for b in bodies:
                if pause == 'busy 10 ms':
                    t = time.perf_counter()
                    while time.perf_counter()-t < 0.01: pass
                elif pause: time.sleep(pause)
                ov.append(one(b))
            ov = np.asarray(ov)*1000
            what = pause if isinstance(pause, str) else (f"sleep {pause*1000:g} ms" if pause else 'none (back to back)')
            rows.append((what, np.percentile(ov, 50), np.percentile(ov, 90), np.percentile(ov, 99)))
    finally:
        srv.terminate(); srv.wait(60)
    print(f"\nservice with a no-work line, {a.requests} single requests per row, {os.cpu_count()} CPUs, "
          f"load average {tuple(round(x, 2) for x in os.getloadavg())}\n")
    print(f"{'client pause between requests':32s} {'overhead p50 ms':>16s} {'p90 ms':>8s} {'p99 ms':>8s}")
    for what, p50, p90, p99 in rows: print(f"{what:32s} {p50:16.2f} {p90:8.2f} {p99:8.2f}")

if __name__ == '__main__': main()
