"""The monitoring reference and drift: reference round trips (JSON, bundle), drift statistics against scipy, thresholds and
the decision rule, multiple-testing corrections, and a table with known changes."""
from __future__ import annotations
import shutil
import numpy as np, pandas as pd
import pytest
from assembly_line.core import ConfigError, DataError, IntegrityError
from assembly_line.datasets import load_example
from assembly_line.schema import infer_schema
from assembly_line import reference as rf, drift as dr


@pytest.fixture(scope='module')
def cars():
    df = load_example('cars').drop(columns=['Name'])
    return df, infer_schema(df, target='Miles_per_Gallon')


def test_reference_json_round_trip_is_exact(cars):
    df, schema = cars
    ref = rf.make_reference(df, schema, n_bins=5, predictions=df['Miles_per_Gallon'])
    back = rf.Reference.from_json(ref.to_json())
    assert back == ref and back.to_json() == ref.to_json()
    assert back.columns['Horsepower'].edges == ref.columns['Horsepower'].edges  # floats bit-exact
    assert set(ref.outputs) == {'prediction'} and ref.task == 'regression'
    assert 'Year' not in ref.columns  # datetime role left out
    with pytest.raises(DataError, match='not valid JSON'): rf.Reference.from_json('{')


def test_reference_bad_input(cars):
    df, schema = cars
    with pytest.raises(DataError): rf.make_reference(df.iloc[:0], schema)
    with pytest.raises(DataError, match='missing'): rf.make_reference(df.drop(columns=['Horsepower']), schema)
    with pytest.raises(ConfigError): rf.make_reference(df, schema, n_bins=1)
    with pytest.raises(DataError, match='differ in length'): rf.make_reference(df, schema, predictions=np.zeros(3))


def test_reference_in_bundle(adult_line, adult_bundle, tmp_path):
    line, df = adult_line
    b = shutil.copytree(adult_bundle, tmp_path/'b')
    ref = rf.make_reference(df, line.schema_, predictions=line.predict_proba(df))
    rf.write_reference(b, ref)
    import dataclasses
    assert rf.read_reference(b) == dataclasses.replace(ref, created='')   # the bundle's copy carries no creation time (deterministic hash)
    from assembly_line.bundle import verify_bundle
    assert 'reference.json' in verify_bundle(b)['files']
    (b/'reference.json').write_text(ref.to_json().replace('"n_bins": 10', '"n_bins": 11'))
    with pytest.raises(IntegrityError): rf.read_reference(b)
    with pytest.raises(IntegrityError, match='no monitoring reference'): rf.read_reference(adult_bundle)


def test_drift_statistics_match_scipy():
    from scipy.stats import ks_2samp, chi2_contingency
    from scipy.spatial.distance import jensenshannon
    rng = np.random.default_rng(0)
    ref_df = pd.DataFrame(dict(x=rng.normal(size=4000), c=rng.choice(['a', 'b', 'c'], 4000, p=[.5, .3, .2])))
    cur = pd.DataFrame(dict(x=rng.normal(0.2, 1, size=3000), c=rng.choice(['a', 'b', 'c', 'z'], 3000, p=[.4, .3, .2, .1])))
    cur.loc[::50, 'x'] = np.nan
    ref = rf.make_reference(ref_df, infer_schema(ref_df), sample=4000)
    res = dr.drift(ref, cur)
    t = res.table.set_index(['column', 'method'])
    ks = ks_2samp(ref_df.x, cur.x.dropna(), method='asymp')
    assert t.loc[('x', 'ks'), 'statistic'] == pytest.approx(ks.statistic, abs=1e-12)
    assert t.loc[('x', 'ks'), 'p_value'] == pytest.approx(ks.pvalue, rel=1e-6)
    # chi2 and JS on level counts: a, b, c, __other__ (z), __missing__ (empty both sides → dropped for chi2)
    rc = ref_df.c.value_counts().reindex(['a', 'b', 'c']).to_numpy()
    cc = cur.c.value_counts().reindex(['a', 'b', 'c', 'z']).to_numpy()
    tab = np.vstack([np.r_[rc, 0], cc])
    assert t.loc[('c', 'chi2'), 'statistic'] == pytest.approx(chi2_contingency(tab, correction=False).statistic, rel=1e-9)
    assert t.loc[('c', 'js'), 'statistic'] == pytest.approx(jensenshannon(np.r_[rc, 0] / rc.sum(), cc / cc.sum(), base=2), rel=1e-9)
    # PSI with the documented smoothing
    r, c = np.maximum(np.r_[rc, 0, 0] / 4000, 1e-4), np.maximum(np.r_[cc, 0] / 3000, 1e-4)
    assert t.loc[('c', 'psi'), 'statistic'] == pytest.approx(np.sum((c - r) * np.log(c / r)), rel=1e-9)
    assert t.loc[('x', 'psi'), 'n_cur'] == 3000 and sum(t.loc[('x', 'psi'), 'cur_shares']) == pytest.approx(1, abs=1e-5)
    assert res.columns.loc['c', 'drifted'] and 'c' in res.drifted_columns


def test_drift_thresholds_and_decide(cars):
    df, schema = cars
    ref = rf.make_reference(df, schema)
    cur = df.assign(Weight_in_lbs=df.Weight_in_lbs * 1.15)
    assert dr.drift(ref, cur).drifted_columns == ['Weight_in_lbs']
    assert dr.drift(ref, cur, threshold=dict(wasserstein=50.)).drifted_columns == []   # an effect floor no shift reaches
    assert dr.drift(ref, cur, threshold=50.).drifted_columns == ['Weight_in_lbs']      # a float is PSI's, which no longer decides
    assert dr.drift(ref, cur, threshold=50., decide=('psi',)).drifted_columns == []    # ... unless asked to
    assert 'Weight_in_lbs' in dr.drift(ref, cur, decide=('ks',)).drifted_columns
    assert dr.drift(ref, cur, table_threshold=0.1).drifted
    with pytest.raises(DataError, match='DataFrame'): dr.drift(ref, [1, 2])
    with pytest.raises(ConfigError, match='correction'): dr.drift(ref, cur, correction='sidak')
    with pytest.raises(ConfigError, match='needs these methods') as e: dr.drift(ref, cur, methods=('psi', 'ks'))
    assert 'wasserstein' in e.value.value
    with pytest.raises(ConfigError, match='decide'): dr.drift(ref, cur, decide=('js', 'energy'))
    with pytest.raises(ConfigError, match='unknown drift method'): dr.drift(ref, cur, threshold=dict(wassertein=0.2))


def test_holm_and_bh_corrections():
    from scipy.stats import false_discovery_control
    rng = np.random.default_rng(3)
    p = rng.random(40) ** 3
    holm = dr._adjust(p, 'holm')
    # Holm by its definition: the i-th smallest p times (m - i + 1), made monotone, capped at 1
    o = np.argsort(p); ref = np.minimum(1, np.maximum.accumulate((40 - np.arange(40)) * p[o]))
    assert np.allclose(holm[o], ref) and (holm >= p).all()
    assert np.allclose(dr._adjust(p, 'bh'), false_discovery_control(p))
    assert np.array_equal(dr._adjust(p, 'none'), p)


def _known_changes(seed=0):
    "Hotel bookings at random: a 60,000-row reference, the unchanged rest, and the rest with five known changes."
    num = ['lead_time', 'adr', 'stays_in_week_nights', 'stays_in_weekend_nights', 'arrival_date_week_number', 'booking_changes',
           'total_of_special_requests', 'agent', 'adults', 'days_in_waiting_list']
    cat = ['market_segment', 'meal', 'hotel', 'country', 'distribution_channel', 'customer_type', 'deposit_type', 'reserved_room_type']
    h = load_example('hotel_bookings')[num + cat]
    rng = np.random.default_rng(seed)
    h = h.iloc[rng.permutation(len(h))].reset_index(drop=True)
    for c in ('stays_in_week_nights', 'total_of_special_requests'): h[c] = h[c].astype(float).mask(rng.random(len(h)) < 0.02)
    ref, same = h.iloc[:60_000].reset_index(drop=True), h.iloc[60_000:].reset_index(drop=True)
    cur = same.copy()
    cur['lead_time'] = cur.lead_time + round(0.3 * ref.lead_time.std())
    cur['adr'] = ref.adr.mean() + (cur.adr - ref.adr.mean()) * np.sqrt(2)
    cur['stays_in_week_nights'] = cur.stays_in_week_nights.mask(rng.random(len(cur)) < 0.29)
    cur['market_segment'] = cur.market_segment.mask(rng.random(len(cur)) < 0.2, 'Metaverse')
    cur.loc[(cur.meal == 'BB') & (rng.random(len(cur)) < 0.3), 'meal'] = 'HB'
    return rf.make_reference(ref, infer_schema(ref, roles={c: 'numeric' for c in num})), same, cur


KNOWN = ['adr', 'lead_time', 'market_segment', 'meal', 'stays_in_week_nights']

def test_known_changes_are_flagged_and_nothing_else():
    ref, same, cur = _known_changes()
    big = dr.drift(ref, cur.iloc[:50_000])
    assert sorted(big.drifted_columns) == KNOWN
    assert dr.drift(ref, same.iloc[:50_000]).drifted_columns == []
    for i in (0, 5000, 40_000):                                  # 5,000-row windows: no false flag, every change
        assert dr.drift(ref, same.iloc[i:i + 5000]).drifted_columns == []
        assert sorted(dr.drift(ref, cur.iloc[i:i + 5000]).drifted_columns) == KNOWN
    c = big.columns
    # what each change looks like: the effect the rule uses is ~0.3 for the mean shift and the doubled variance
    assert 0.25 < c.loc['lead_time', 'effect'] < 0.35 and 0.25 < c.loc['adr', 'effect'] < 0.4
    assert c.loc['adr', 'psi'] < 0.2                              # the old PSI-only rule missed it
    t = big.table.set_index(['column', 'method'])
    assert t.loc[('stays_in_week_nights', 'missing'), 'statistic'] > 0.8 and t.loc[('stays_in_week_nights', 'missing'), 'drifted']
    assert not t.loc[('stays_in_week_nights', 'ks'), 'drifted']    # the values left are unchanged: missingness decides
    assert not t.loc[('total_of_special_requests', 'missing'), 'drifted']   # 2% missing in both
    # the old rule, kept as an option, misses the doubled variance
    assert 'adr' not in dr.drift(ref, cur.iloc[:50_000], decide=('psi', 'js')).drifted_columns


def test_prediction_and_missing_drift_follow_the_rule():
    rng = np.random.default_rng(1)
    n = 20_000
    train = pd.DataFrame(dict(x=rng.normal(size=n), k=rng.choice(list('abc'), n)))
    proba = pd.DataFrame({'no': 1 - (p := rng.beta(2, 5, n)), 'yes': p})
    ref = rf.make_reference(train, infer_schema(train), predictions=proba)
    ref.task, ref.classes = 'binary', ['no', 'yes']
    cur = pd.DataFrame(dict(x=rng.normal(size=5000), k=rng.choice(list('abc'), 5000)))
    pq = rng.beta(2, 5, 5000)
    same = dr.drift(ref, pd.concat([cur, rf.prediction_frame(pd.DataFrame({'no': 1 - pq, 'yes': pq}), 'binary', ['no', 'yes'])], axis=1))
    assert same.drifted_columns == [] and not same.prediction_drifted
    pq = rng.beta(3, 5, 5000)                                     # the model says "yes" more often
    moved = dr.drift(ref, pd.concat([cur.assign(x=cur.x.mask(rng.random(5000) < 0.1)),   # 0% → 10% missing
                                      rf.prediction_frame(pd.DataFrame({'no': 1 - pq, 'yes': pq}), 'binary', ['no', 'yes'])], axis=1))
    assert moved.prediction_drifted and moved.columns.loc['proba_yes', 'drifted']
    assert moved.drifted_columns == ['x'] and moved.columns.loc['x', 'fired'] == 'psi, missing'
    # a 40-row window of a real change that is too small to be significant is not flagged, and says why
    tiny = dr.drift(ref, cur.iloc[:40].assign(x=cur.x.iloc[:40] + 0.3))
    assert tiny.drifted_columns == [] and 'KS p_adj' in tiny.columns.loc['x', 'reason']


def test_numbers_logged_as_text_match_their_levels():
    df = pd.DataFrame(dict(k=[1, 2, 3] * 100, y=np.arange(300.)))
    ref = rf.make_reference(df, infer_schema(df, roles={'k': 'categorical'}))
    res = dr.drift(ref, df.assign(k=df.k.astype(str)))
    assert res.table.query("column == 'k' and method == 'psi'").statistic.item() == pytest.approx(0, abs=1e-9)
