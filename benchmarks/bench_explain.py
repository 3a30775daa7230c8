"""What an explanation costs: `AssemblyLine.explain` per row and per 1,000 rows, beside the line's own prediction time.

    python benchmarks/bench_explain.py [--repeats 30] [--rows 1000]

Lines (deterministic, no tuning, 1 thread: what the service runs):
1. a 20-feature tree ensemble: `sklearn.datasets.make_classification` (20 informative/redundant/noise columns, 4,000 rows),
   LightGBM + histogram boosting refitted on all rows (one model each), and the same kept as 5 fold models each
   (`refit=False`) — the budget figure of issue 20: one row within 50 ms;
2. adult (14 original columns, 4,000 rows), LightGBM + histogram boosting;
3. diamonds (9 columns, 4,000 rows, regression), LightGBM + histogram boosting;
4. adult with a linear model only: the model-agnostic path (shap's PermutationExplainer, 100 background rows).
Prints, per line: members, the median time of `predict_proba` / `predict` on one row and on `--rows` rows, and of
`explain` on one row (warm: the explainer is built once and cached) and on `--rows` rows; and the largest deviation of
base + contributions from the prediction (additivity) over those rows.
"""
import argparse, time, warnings
import numpy as np, pandas as pd
from threadpoolctl import threadpool_limits
from assembly_line.datasets import load_example
from assembly_line.line import AssemblyLine
import assembly_line.explain  # noqa: F401  (AssemblyLine.explain)

warnings.filterwarnings('ignore')

def _fit(df, target, include, refit=True):
    return AssemblyLine(target, time_budget=30, seed=0, include=include, tune=False, deterministic=True, n_jobs=1, refit=refit).fit(df)

def _median(f, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))

def _synthetic(n=5000, seed=0):
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=n, n_features=20, n_informative=8, n_redundant=4, random_state=seed)
    df = pd.DataFrame(X, columns=[f'x{i:02d}' for i in range(20)]); df['y'] = np.where(y == 1, 'yes', 'no')
    return df

def main(repeats=30, rows=1000):
    cases = [('20 features (synthetic), lightgbm+hist_gb', _synthetic(), 'y', ['lightgbm', 'hist_gb'], None),
             ('20 features (synthetic), lightgbm+hist_gb, fold models', _synthetic(), 'y', ['lightgbm', 'hist_gb', 'folds'], None),
             ('adult, lightgbm+hist_gb', load_example('adult', n=5000, seed=0), 'income', ['lightgbm', 'hist_gb'], None),
             ('diamonds (regression), lightgbm+hist_gb', load_example('diamonds', n=5000, seed=0), 'price', ['lightgbm', 'hist_gb'], None),
             ('adult, linear (permutation explainer)', load_example('adult', n=5000, seed=0), 'income', ['linear'], 20)]
    print(f"| line | columns | members | predict 1 row | explain 1 row | predict {rows:,} rows | explain {rows:,} rows | max additivity error |")
    print("|---|---|---|---|---|---|---|---|")
    with threadpool_limits(1):
        for name, df, target, include, n_rows in cases:
            train, test = df.iloc[:4000], df.iloc[4000:].drop(columns=target)
            line = _fit(train, target, [m for m in include if m != 'folds'], refit='folds' not in include)
            bg = train if n_rows else None
            one = test.iloc[[0]]
            block = test.iloc[:(n_rows or rows)]
            pred = (line.predict_proba if line.task_.is_classification else line.predict)
            line.explain(one, background=bg)               # warm: the explainer is built and cached
            p1 = _median(lambda: pred(one), repeats)
            e1 = _median(lambda: line.explain(one, background=bg), repeats if not n_rows else 3)
            pn = _median(lambda: pred(block), 3)
            t = time.perf_counter(); ex = line.explain(block, background=bg); en = time.perf_counter() - t
            p = np.asarray(pred(block), dtype=float)
            err = np.abs(ex.prediction - (p if p.ndim == 2 else p[:, None])).max()
            scale = rows/len(block)
            members = ', '.join(f"{n} ({len(f)} folds)" for n, f in zip(line.model_.names, line.model_.members))
            print(f"| {name} | {len(line.schema_.features)} | {members} | {p1*1e3:.1f} ms | {e1*1e3:.1f} ms | {pn*1e3:.0f} ms | "
                  f"{en*scale:.2f} s{'' if scale == 1 else f' (from {len(block)} rows)'} | {err:.1e} |", flush=True)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--repeats', type=int, default=30); ap.add_argument('--rows', type=int, default=1000)
    a = ap.parse_args(); main(a.repeats, a.rows)
