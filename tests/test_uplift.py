"""Lever-effect models and off-policy evaluation on simulated experiments with known heterogeneous effects."""
import numpy as np, pandas as pd, pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from assembly_line.core import ConfigError, DataError, NotFittedError
from assembly_line.uplift import (LEARNERS, LeverEffects, LineLearner, off_policy_scores, evaluate_policies, uplift_curve, auuc,
                                  check_propensity)
from assembly_line.drivetrain import Lever, Objective, optimize, effect_simulation, off_policy, budget_sensitivity

NOISE = 0.5
P_ARMS = np.array([0.5, 0.3, 0.2])   # assignment probabilities of the three arms (known, unequal)


def true_mu(X):
    "Outcome of every row under each of 3 arms: arm 1 helps where x1 > 0, arm 2 where x1 < 0 (and x3 > -1)."
    x1, x2, x3 = (X[c].to_numpy() for c in ('x1', 'x2', 'x3'))
    return np.column_stack([x2, x2 + 2 * x1, x2 - 2 * x1 + (x3 > -1)])


def experiment(n, seed):
    r = np.random.default_rng(seed)
    X = pd.DataFrame(r.normal(size=(n, 3)), columns=['x1', 'x2', 'x3'])
    a = r.choice(3, size=n, p=P_ARMS)
    y = true_mu(X)[np.arange(n), a] + r.normal(scale=NOISE, size=n)
    return X, a, y, P_ARMS[a]


@pytest.mark.parametrize('learner', [pytest.param(l, marks=pytest.mark.slow) if l == 'x' else l for l in LEARNERS])
def test_estimated_best_arm_agrees_with_the_truth(learner):
    X, a, y, e = experiment(1500, seed=0)
    fx = LeverEffects(learner, n_folds=3).fit(X, a, y, propensity=e)
    Xn, *_ = experiment(2000, seed=1)
    mu = true_mu(Xn); top2 = np.sort(mu, 1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > NOISE            # rows where the best arm beats the next by more than the noise
    agree = (fx.predict(Xn).to_numpy().argmax(1) == mu.argmax(1))[clear].mean()
    assert clear.mean() > 0.5 and agree >= 0.9, (learner, agree)


def test_dr_value_covers_the_true_policy_value():
    "Over 30 seeds, the 95% DR interval of the learned policy's value covers its true value at least 27 times."
    covered, ipw_covered = 0, 0
    for seed in range(30):
        X, a, y, e = experiment(800, seed=100 + seed)
        fx = LeverEffects('t', model=LinearRegression(), n_folds=2, seed=seed).fit(X, a, y, propensity=e)
        Xh, ah, yh, eh = experiment(800, seed=200 + seed)
        mu = fx.predict(Xh).to_numpy(); pick = mu.argmax(1)
        S = off_policy_scores(mu, ah, yh, eh)
        ev = evaluate_policies(S, {'learned': pick}, n_boot=400, seed=seed)
        truth = true_mu(Xh)[np.arange(len(Xh)), pick].mean()
        covered += ev.table.loc['learned', 'dr_low'] <= truth <= ev.table.loc['learned', 'dr_high']
        ipw_covered += ev.table.loc['learned', 'ipw_low'] <= truth <= ev.table.loc['learned', 'ipw_high']
    assert covered >= 27, covered
    assert ipw_covered >= 24, ipw_covered


def test_dr_is_tighter_than_ipw_and_a_wrong_model_stays_unbiased():
    X, a, y, e = experiment(3000, seed=3)
    truth_all1 = true_mu(X)[:, 1].mean()
    bad_mu = np.zeros((len(X), 3))                     # a useless outcome model: DR falls back on the propensities
    S = off_policy_scores(bad_mu, a, y, e)
    ev = evaluate_policies(S, {'arm 1 for all': np.ones(len(X), int)}, n_boot=500)
    assert ev.table.loc['arm 1 for all', 'dr_low'] <= truth_all1 <= ev.table.loc['arm 1 for all', 'dr_high']
    fx = LeverEffects('t', model=LinearRegression(), n_folds=3).fit(X, a, y, propensity=e)
    S2 = off_policy_scores(fx.mu_, a, y, e)
    t = evaluate_policies(S2, {'arm 1 for all': np.ones(len(X), int)}, n_boot=500).table.loc['arm 1 for all']
    assert t['dr_high'] - t['dr_low'] < t['ipw_high'] - t['ipw_low']


def test_the_optimizer_on_effects_beats_the_baselines_it_should():
    "Budgeted decisions from lever-effect models, evaluated off-policy: better than random at the same budget."
    X, a, y, e = experiment(1500, seed=5)
    Xh, ah, yh, eh = experiment(1000, seed=6)
    fx = LeverEffects('t', n_folds=3).fit(X, a, y, propensity=e)
    lever = Lever('arm', [0, 1, 2], cost=lambda d, v: float(v > 0))
    sim = effect_simulation(fx, Xh, lever)
    obj = Objective(lambda f: 10 * f['outcome'] - f['cost'], 'money')
    budget = 0.5 * len(Xh)
    d = optimize(sim, obj, budget=budget)
    assert d.evidence == 'randomised' and d.choice['cost'].sum() <= budget + 1e-6
    ev = off_policy(d, sim, obj, fx, ah, yh, propensity=eh, budget=budget, n_boot=500)
    assert ev.verdict('optimised', 'random within budget: arm=1') == 'better'
    assert ev.verdict('optimised', 'treat none') == 'better'
    assert not ev.table.loc['everyone: arm=1', 'within_budget'] and ev.table.loc['optimised', 'within_budget']
    curve = uplift_curve(fx.effects(Xh).iloc[:, 0], off_policy_scores(sim.frame.sort_values(['row', 'option'])['outcome']
                                                                      .to_numpy().reshape(-1, 3), ah, yh, eh)['DR'])
    assert auuc(curve) > 0
    sens = budget_sensitivity(sim, obj, [0.1 * len(Xh), budget], fx, ah, yh, propensity=eh, n_boot=200)
    assert sens['model_value'].is_monotonic_increasing and (sens['spent'] <= sens['budget'] + 1e-6).all()


def test_not_randomized_without_propensity_warns_everywhere():
    X, a, y, e = experiment(600, seed=7)
    fx = LeverEffects('t', n_folds=2).fit(X, a, y)
    assert fx.source_ == 'estimated' and 'not randomized' in fx.warnings_[0]
    sim = effect_simulation(fx, X, Lever('arm', [0, 1, 2]))
    assert sim.evidence == 'observational'
    d = optimize(sim, Objective(lambda f: f['outcome']))
    assert d.evidence == 'observational' and 'Observational evidence' in d._repr_markdown_()
    ev = off_policy(d, sim, Objective(lambda f: f['outcome']), fx, a, y, n_boot=100)
    assert any('not randomized' in w for w in ev.warnings) and 'not randomized' in ev._repr_markdown_()


def test_bad_input_gets_clear_errors():
    X, a, y, e = experiment(300, seed=8)
    with pytest.raises(DataError, match='strictly between 0 and 1') as err:
        LeverEffects('t').fit(X, a, y, propensity=np.where(np.arange(300) == 7, 1.0, e))
    assert err.value.row == 7
    with pytest.raises(DataError, match='strictly between'):
        check_propensity([0.2, -0.1], 2)
    with pytest.raises(DataError, match='never'):
        LeverEffects('t', grid=[0, 1, 2, 9]).fit(X, a, y, randomized=True)
    fx = LeverEffects('t', n_folds=2).fit(X, a, y, randomized=True)
    with pytest.raises(DataError, match='never observed'):
        fx.arm_index([0, 4])
    with pytest.raises(DataError, match='never observed') as err:
        effect_simulation(fx, X, Lever('arm', [0, 1, 5]))
    assert err.value.value == 5
    sim = effect_simulation(fx, X, Lever('arm', [0, 1, 2], cost=lambda d, v: float(v)))
    obj = Objective(lambda f: f['outcome'] - f['cost'])
    with pytest.raises(ConfigError, match='at least one budget'):
        budget_sensitivity(sim, obj, [], fx, a, y)
    with pytest.raises(ConfigError, match='budget must be'):
        optimize(sim, obj, budget=-1.0)
    with pytest.raises(ConfigError, match='unknown learner'):
        LeverEffects('q').fit(X, a, y, randomized=True)
    with pytest.raises(DataError, match='missing'):
        LeverEffects('t').fit(X, pd.Series(a).where(np.arange(300) != 3), y, randomized=True)
    with pytest.raises(DataError, match='one value only'):
        LeverEffects('t').fit(X, np.zeros(300), y, randomized=True)
    with pytest.raises(DataError, match='input of the lever-effect models is missing'):
        fx.predict(X.drop(columns='x2'))
    with pytest.raises(NotFittedError):
        LeverEffects().predict(X)
    with pytest.raises(ConfigError, match='affine'):
        off_policy(optimize(sim, obj), sim, Objective(lambda f: np.exp(f['outcome'])), fx, a, y)


def test_estimators_clone_with_their_parameters():
    fx = LeverEffects('x', grid=[0, 1], model=LinearRegression(), n_folds=4, seed=3)
    c = clone(fx)
    assert c.get_params()['learner'] == 'x' and c.get_params()['n_folds'] == 4 and not hasattr(c, 'models_')
    assert clone(LineLearner(time_budget=7, include=['linear'])).get_params()['time_budget'] == 7


def test_the_current_policy_is_valued_when_the_lever_knows_it():
    X, a, y, e = experiment(900, seed=9)
    fx = LeverEffects('t', model=LinearRegression(), n_folds=2).fit(X.head(600), a[:600], y[:600], propensity=e[:600])
    today = np.where(X['x1'].tail(300).to_numpy() > 0, 1, 0)          # today: arm 1 where x1 > 0, else nothing
    lever = Lever('arm', [0, 1, 2], current=lambda d: today)
    sim = effect_simulation(fx, X.tail(300), lever)
    d = optimize(sim, Objective(lambda f: f['outcome']))
    ev = off_policy(d, sim, Objective(lambda f: f['outcome']), fx, a[600:], y[600:], propensity=e[600:], n_boot=200)
    mu = fx.predict(X.tail(300)).to_numpy()
    S = off_policy_scores(mu, a[600:], y[600:], e[600:])['DR']
    assert ev.table.loc['current', 'dr_value'] == pytest.approx(S[np.arange(300), today].mean())
