"""Drift on production-sized logs: assembly_line.drift.drift vs Evidently's DataDriftPreset.

1,000,000 logged rows x 20 columns (14 numeric, 6 categorical) against a 100,000-row reference. Five columns are
shifted on purpose: three numeric columns by 0.75 standard deviations, one categorical column gains a new level in
20% of rows, one categorical column has its level shares changed. Both tools must flag exactly those five.

    python benchmarks/bench_drift.py            # ours, then Evidently in benchmarks/.venvs/evidently (created if missing)
    python benchmarks/bench_drift.py --no-evidently

Evidently needs pandas < 3, so it runs in its own venv; the data is regenerated there from the same seed (checksum printed).
Peak memory = growth of the process's peak resident set during the call (VmHWM reset through /proc/self/clear_refs,
minus VmRSS before), so timing runs without tracing overhead.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time, venv
from pathlib import Path
import numpy as np, pandas as pd

HERE = Path(__file__).resolve().parent
EVENV = HERE/'.venvs'/'evidently'
SHIFTED = ['n00', 'n01', 'n02', 'c00', 'c01']
N_REF, N_CUR = 100_000, 1_000_000

def make_data(n_ref=N_REF, n_cur=N_CUR, seed=0):
    "Reference and current frames: 14 numeric + 6 categorical columns; the SHIFTED ones move in `current`."
    rng = np.random.default_rng(seed)
    def frame(n, shift):
        d = {}
        for i in range(14):
            kind = i % 3
            if kind == 0: x = rng.normal(50, 10, n); sd = 10
            elif kind == 1: x = rng.lognormal(3, 0.5, n); sd = np.sqrt((np.exp(0.25) - 1) * np.exp(6.25))
            else: x = rng.poisson(8, n).astype(float); sd = np.sqrt(8)
            if shift and f"n{i:02d}" in SHIFTED: x = x + 0.75 * sd
            d[f"n{i:02d}"] = x
        levels = np.array(list('ABCDEFGH'))
        for j in range(6):
            p = np.linspace(3, 1, 8); p = p / p.sum()
            if shift and j == 1: p = p[::-1]                      # c01: level shares reversed
            c = levels[rng.choice(8, n, p=p)].astype(object)
            if shift and j == 0: c[rng.random(n) < 0.2] = 'NEW'   # c00: a level never seen in training
            d[f"c{j:02d}"] = c
        return pd.DataFrame(d)
    return frame(n_ref, False), frame(n_cur, True)

def checksum(ref, cur):
    return float(ref.select_dtypes('number').to_numpy().sum() + cur.select_dtypes('number').to_numpy().sum())

def _status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'): return int(line.split()[1]) / 1024  # MiB
    return float('nan')

def timed(fn):
    "Run fn; return (result, seconds, extra peak resident MiB)."
    try: open('/proc/self/clear_refs', 'w').write('5')  # reset the peak-RSS mark (Linux)
    except OSError: pass
    rss0 = _status('VmRSS'); t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    return out, dt, _status('VmHWM') - rss0

def run_ours(ref, cur):
    from assembly_line.schema import infer_schema
    from assembly_line.reference import make_reference
    from assembly_line.drift import drift
    schema = infer_schema(ref)
    reference, t_ref, m_ref = timed(lambda: make_reference(ref, schema))
    drift(reference, cur.iloc[:1000])  # warm imports (scipy)
    res, t, m = timed(lambda: drift(reference, cur))
    return dict(tool='assembly_line drift()', seconds=t, peak_mib=m, flagged=sorted(res.drifted_columns),
                note=f"reference built once at training: {t_ref:.2f} s, {m_ref:.0f} MiB")

def run_evidently(ref, cur):
    from evidently import Report
    from evidently.presets import DataDriftPreset
    import evidently
    snap, t, m = timed(lambda: Report([DataDriftPreset()]).run(cur, ref))
    flagged = []
    for x in snap.dict()['metrics']:
        cfg = x['config']
        if not cfg.get('type', '').endswith('ValueDrift'): continue
        pval = 'p_value' in cfg['method'].lower().replace('-', '_')
        if (x['value'] < cfg['threshold']) if pval else (x['value'] >= cfg['threshold']): flagged.append(cfg['column'])
    return dict(tool=f"Evidently {evidently.__version__} DataDriftPreset", seconds=t, peak_mib=m, flagged=sorted(flagged), note='')

def ensure_evidently_venv():
    py = EVENV/'bin'/'python'
    if py.exists() and subprocess.run([py, '-c', 'import evidently'], capture_output=True).returncode == 0: return py
    print(f"creating {EVENV} and installing evidently (pandas<3) ...", flush=True)
    venv.create(EVENV, with_pip=True)
    subprocess.run([py, '-m', 'pip', 'install', '-q', 'evidently', 'pandas<3'], check=True)
    return py

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--no-evidently', action='store_true')
    ap.add_argument('--evidently-worker', action='store_true', help=argparse.SUPPRESS)
    a = ap.parse_args()
    ref, cur = make_data()
    if a.evidently_worker:
        r = run_evidently(ref, cur); r['checksum'] = checksum(ref, cur)
        print('RESULT ' + json.dumps(r)); return
    print(f"reference {len(ref):,} rows, current {len(cur):,} rows x {cur.shape[1]} columns; shifted: {SHIFTED}")
    rows = [run_ours(ref, cur)]
    if not a.no_evidently:
        py = ensure_evidently_venv()
        p = subprocess.run([py, __file__, '--evidently-worker'], capture_output=True, text=True)
        line = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
        if not line: print("Evidently run failed:\n" + p.stderr[-3000:])
        else:
            r = json.loads(line[-1][7:])
            same = abs(r.pop('checksum') - checksum(ref, cur)) < 1e-6 * abs(checksum(ref, cur))
            if not same: r['note'] = 'WARNING: data differ from ours (checksum)'
            rows.append(r)
    t = pd.DataFrame(rows)
    t['exactly_shifted'] = t.flagged.map(lambda f: f == sorted(SHIFTED))
    t['flagged'] = t.flagged.map(', '.join)
    print(t[['tool', 'seconds', 'peak_mib', 'exactly_shifted', 'flagged', 'note']].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if len(t) == 2: print(f"speed-up: {t.seconds[1] / t.seconds[0]:.1f}x, memory: {t.peak_mib[1] / t.peak_mib[0]:.1f}x less")

if __name__ == '__main__': main()
