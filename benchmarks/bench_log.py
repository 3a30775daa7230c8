"""Benchmark of the prediction log's write cost as the table grows: random request ids (uuid4) against the time-ordered
ids the store and the service make (`store.new_request_ids`, UUIDv7).

    python benchmarks/bench_log.py [--rows 120000] [--batch 1000]

Writes `--rows` real adult predictions (inputs and outputs as the service logs them) in batches of `--batch` rows into
a fresh SQLite store (WAL, synchronous=NORMAL) for each kind of id, and prints the time of one batch's
`log_predictions` (median of the batches around each size) as the table grows. Prints a table; asserts nothing.
"""
import argparse, datetime as dt, json, os, tempfile, time, uuid, warnings
from pathlib import Path
import numpy as np, pandas as pd

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rows', type=int, default=120_000)
    ap.add_argument('--batch', type=int, default=1000)
    a = ap.parse_args()
    warnings.filterwarnings('ignore')
    from assembly_line.store import Store
    from assembly_line.logs import new_request_ids
    from assembly_line.datasets import load_example
    recs = json.loads(load_example('adult', n=a.batch, seed=1).drop(columns='income').to_json(orient='records'))
    outs = [{'prediction': '<=50K', 'proba': {'<=50K': 0.9, '>50K': 0.1}}]*a.batch
    kinds = {'random (uuid4)': lambda n: [uuid.uuid4().hex for _ in range(n)], 'time-ordered (UUIDv7)': new_request_ids}
    n_batches = a.rows // a.batch
    marks = sorted({1, *(int(n_batches*f) for f in (0.1, 0.25, 0.5, 0.75, 1.0))})
    tmp = Path(tempfile.mkdtemp(prefix='bench-log-'))
    res = {}
    for kind, make in kinds.items():
        st = Store(f"sqlite:///{tmp/(kind.split()[0] + '.sqlite')}")
        ts, cpu = [], []
        for k in range(n_batches):
            now = dt.datetime.now(dt.timezone.utc)
            rows = [dict(request_id=r, model='adult', version=1, inputs=i, outputs=o, latency_ms=3.0, ts=now)
                    for r, i, o in zip(make(a.batch), recs, outs)]
            c, t = time.thread_time(), time.perf_counter()
            st.log_predictions(rows)
            ts.append(time.perf_counter()-t); cpu.append(time.thread_time()-c)
        res[kind] = {m*a.batch: float(np.median(ts[max(0, m-5):m]))*1000 for m in marks}
        res[kind + ' CPU'] = {m*a.batch: float(np.median(cpu[max(0, m-5):m]))*1000 for m in marks}
        st.engine.dispose()
    tab = pd.DataFrame(res); tab.index.name = 'rows in the table'
    print(f"ms per log_predictions of {a.batch} rows (median of the 5 batches up to each size), {os.cpu_count()} CPUs\n")
    print(tab.round(1).to_string())

if __name__ == '__main__': main()
