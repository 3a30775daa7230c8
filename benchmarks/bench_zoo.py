"""Every zoo model through cross-validation on UCI adult (binary) and ggplot2 diamonds (regression).

Run: `python benchmarks/bench_zoo.py [--folds 5] [--rows N] [--budget SECONDS] [--jobs 2]`

For each data set: clean, infer the schema, then cross-fit each zoo model's pipeline (the features stage's
preprocessor + the model) with `training.train_candidates` on the same folds, and print the leaderboard
(`evaluation.Leaderboard`: CV mean ± sd of the task's default metric, fit seconds summed over folds, predict
milliseconds per 1,000 rows). A per-model budget keeps a slow model from holding up the rest; a model cut short is
reported as such. Writes `benchmarks/results/zoo.md`.
"""
import argparse, time, os, platform
from pathlib import Path
import numpy as np, pandas as pd
from threadpoolctl import threadpool_limits
from assembly_line.datasets import load_example, EXAMPLES
from assembly_line.schema import infer_schema
from assembly_line.clean import clean
from assembly_line.selection import zoo
from assembly_line.training import train_candidates
from assembly_line.evaluation import Leaderboard
from assembly_line.metrics import default_metric

def run(name:str, folds:int, rows:int|None, budget:float, jobs:int)->str:
    ex = EXAMPLES[name]
    df = clean(load_example(name, n=rows), target=ex.target).df
    schema = infer_schema(df, target=ex.target)
    X, y = df[schema.features], df[ex.target]
    cands = zoo(schema.task)
    pipes = {n: c.make(schema) for n, c in cands.items()}
    t0 = time.perf_counter()
    res = train_candidates(pipes, X, y, folds, schema.task, per_model_budget=budget, n_jobs=jobs, seed=0)
    wall = time.perf_counter() - t0
    ok = {n: r for n, r in res.items() if r.ok}
    cut = {n: f"{r.completed}/{r.n_folds} folds" + (f" ({r.error})" if r.error else ' (per-model budget)') for n, r in res.items() if not r.ok}
    lb = Leaderboard.from_results(ok, y.to_numpy(), default_metric(schema.task).name, task=schema.task)
    head = (f"### {name}: {len(df):,} rows × {len(schema.features)} features, {schema.task}, {folds}-fold CV, "
            f"metric {lb.metric_name}; {wall:.0f} s in all, load average {os.getloadavg()[0]:.1f}")
    body = lb.display_frame().drop(columns=['holdout ' + lb.metric_name + ' [CI]']).to_markdown(index=False)
    tail = ('\n\nNot complete within the per-model budget: ' + '; '.join(f"{n}: {v}" for n, v in cut.items())) if cut else ''
    return f"{head}\n\n{body}{tail}\n"

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--datasets', default='adult,diamonds', help='comma-separated example names')
    p.add_argument('--folds', type=int, default=5, help='CV folds')
    p.add_argument('--rows', type=int, default=None, help='seeded sample of at most this many rows (default: all)')
    p.add_argument('--budget', type=float, default=300, help='seconds each model may use for all its folds')
    p.add_argument('--jobs', type=int, default=2, help='folds fitted side by side (worker processes)')
    a = p.parse_args()
    out = [f"# Zoo benchmark\n\nCommand: `python benchmarks/bench_zoo.py --folds {a.folds} --budget {a.budget:g} --jobs {a.jobs}"
           f"{f' --rows {a.rows}' if a.rows else ''}`; {os.cpu_count()} CPUs, Python {platform.python_version()}, "
           f"{time.strftime('%Y-%m-%d %H:%M')}.\n"]
    with threadpool_limits(1):
        for name in a.datasets.split(','):
            text = run(name.strip(), a.folds, a.rows, a.budget, a.jobs)
            print(text, flush=True); out.append(text)
    dest = Path(__file__).parent/'results'/'zoo.md'
    dest.parent.mkdir(parents=True, exist_ok=True); dest.write_text('\n'.join(out))
    print(f"written to {dest}")

if __name__ == '__main__':
    main()
