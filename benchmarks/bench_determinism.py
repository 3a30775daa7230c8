"""Parallel TPE, default vs deterministic mode: how many distinct outcomes (trial states and scores) identical runs give,
and what determinism costs in wall time.

    python benchmarks/bench_determinism.py [--runs 5] [--trials 16] [--jobs 2]

Each run tunes the zoo's logistic regression on titanic (5 folds, seed 0) with TPE and median pruning on `--jobs` workers.
The sequential search (`n_jobs=1`) is the reference: deterministic runs must all equal it."""
import argparse, time
import pandas as pd
from assembly_line.datasets import load_example, EXAMPLES
from assembly_line.schema import infer_schema
from assembly_line.selection import zoo
from assembly_line.spaces import search_space
from assembly_line.tuning import tune

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--runs', type=int, default=5); ap.add_argument('--trials', type=int, default=16)
    ap.add_argument('--jobs', type=int, default=2)
    a = ap.parse_args()
    df = load_example('titanic'); t = EXAMPLES['titanic'].target
    sch = infer_schema(df, target=t)
    pipe = zoo(sch.task, include=['linear'])['linear'].make(sch)
    X, y, space = df[sch.features], df[t], search_space('linear', task=sch.task)
    cols = ['trial', 'state', 'score']
    key = lambda tr: tuple(map(tuple, tr[cols].astype(str).values.tolist()))
    run = lambda **kw: tune(pipe, space, X, y, sch.task, folds=5, n_trials=a.trials, seed=0, refit=False, **kw)
    t0 = time.perf_counter(); ref = run(n_jobs=1).trials; seq_s = time.perf_counter() - t0
    rows = []
    for det in (False, True):
        keys, secs = [], []
        for _ in range(a.runs):
            t0 = time.perf_counter(); tr = run(n_jobs=a.jobs, deterministic=det).trials; secs.append(time.perf_counter() - t0)
            keys.append(key(tr))
        rows.append(dict(mode='deterministic' if det else 'default', runs=a.runs, distinct_outcomes=len(set(keys)),
                         equal_to_sequential=sum(k == key(ref) for k in keys),
                         pruned_per_run='/'.join(str(sum(s == 'pruned' for _, s, _ in k)) for k in keys),
                         median_s=round(float(pd.Series(secs).median()), 1)))
    print(f"sequential (n_jobs=1): {seq_s:.1f} s, {int((ref.state == 'pruned').sum())} of {len(ref)} trials pruned")
    print(pd.DataFrame(rows).to_markdown(index=False))

if __name__ == '__main__': main()
