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
