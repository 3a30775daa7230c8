"""AssemblyLine against its peers: FLAML, AutoGluon, and default LightGBM / HistGradientBoosting, on the same splits.

    .venv/bin/python benchmarks/bench_peers.py                       # 8 data sets x 5 systems x 60 s (~45 min)
    .venv/bin/python benchmarks/bench_peers.py --quick               # 10 s budget, penguins + titanic: end-to-end check
    .venv/bin/python benchmarks/bench_peers.py --systems assembly_line,lightgbm --datasets adult,cars --budget 30
    .venv/bin/python benchmarks/bench_peers.py --install-only        # only create the peers' venvs
    .venv/bin/python benchmarks/bench_peers.py --merge a.json,b.json --out benchmarks/results/peers   # rerun rows win

Data. Each data set comes from `assembly_line.datasets.load_example` (run in the repo's venv) and is split once,
80/20, seeded (`--seed`), stratified for classification, into `benchmarks/results/data/<name>/{train,test}.parquet`
plus `meta.json` (target, task, class order). Every system reads those same files. Preparation: cars drops rows
without a target; hotel_bookings is a seeded sample of 20,000 rows without the leaking columns
`reservation_status` and `reservation_status_date`.

Systems. Each (data set, system) runs in its own subprocess (this file with `--child`):
- `assembly_line`: `AssemblyLine(target, time_budget=budget, metric=..., seed=seed)` in the repo's `.venv`;
- `lightgbm`, `hist_gb`: `LGBM*` / `HistGradientBoosting*` with default parameters in the repo's `.venv`; categoricals
  (object/category/bool) ordinal-encoded (unseen/missing -> NaN), datetimes as days since 1970, no tuning;
- `flaml`: `flaml.AutoML().fit(X, y, task=..., time_budget=budget, metric=..., seed=seed)` in `benchmarks/.venvs/flaml`;
- `autogluon`: `TabularPredictor(label, eval_metric=..., problem_type=...).fit(train, time_limit=budget)` with its
  default presets in `benchmarks/.venvs/autogluon` (lightgbm, catboost, xgboost extras; no torch, so its neural nets
  are skipped).
The venvs are created with the repo venv's base Python and installed by pip (`--skip-install` uses them as they are).

Measures. Fit wall time = the child's own `time.perf_counter()` around the fit call only. Peak memory = the peak of
the summed resident set of the child and all its descendants (psutil, sampled every 0.1 s, which also sees worker
processes such as loky/joblib pools), never below the child's own `ru_maxrss`. The child saves the holdout
probabilities (classes in one fixed order) or predictions; this parent scores all systems in one place with
scikit-learn: ROC-AUC (binary), log loss (multiclass), RMSE (regression). A fit inside budget means fit time <=
1.1 x budget. Summary: per data set the rank of each system (failures rank last), then mean rank, and mean score
relative to the best (AUC: score/best; losses: best/score; a failure counts 0).

Outputs: a table on stdout, `benchmarks/results/peers.md` and `benchmarks/results/peers.json` (all raw numbers, load
averages at start and end, versions). The machine is shared: the load average is printed at start and end.
"""
from __future__ import annotations
import argparse, json, os, shutil, subprocess, sys, threading, time, venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE/'results'
DATA = RESULTS/'data'
VENVS = HERE/'.venvs'
REPO_PY = REPO/'.venv'/'bin'/'python'

DATASETS = ['adult', 'titanic', 'penguins', 'cars', 'wa_churn', 'diamonds', 'computers', 'hotel_bookings']
SYSTEMS = ['assembly_line', 'flaml', 'autogluon', 'lightgbm', 'hist_gb']
QUICK_DATASETS, QUICK_BUDGET = ['penguins', 'titanic'], 15
HOTEL_ROWS = 20_000
SLACK = 1.10
METRIC = dict(binary='roc_auc', multiclass='log_loss', regression='rmse')
GREATER = dict(roc_auc=True, log_loss=False, rmse=False)

# what each peer's venv gets (pyarrow reads the splits, psutil measures memory)
INSTALL = {
    'flaml': ['flaml[automl]', 'pyarrow', 'psutil'],
    'autogluon': ['autogluon.tabular[lightgbm,catboost,xgboost]', 'pyarrow', 'psutil'],
}
CHECK_IMPORT = {'flaml': 'import flaml.automl, lightgbm, xgboost, pyarrow, psutil',
                'autogluon': 'import autogluon.tabular, lightgbm, catboost, xgboost, pyarrow, psutil'}

def python_for(system:str)->Path:
    return VENVS/system/'bin'/'python' if system in INSTALL else REPO_PY

# ---------------------------------------------------------------------------------------------------------- install
def base_python()->str:
    "The interpreter the repo venv was made from (same Python version for every venv)."
    out = subprocess.run([str(REPO_PY), '-c', 'import sys; print(sys.base_prefix)'], capture_output=True, text=True)
    for name in ('python3', 'python'):
        p = Path(out.stdout.strip())/'bin'/name
        if p.exists(): return str(p)
    return sys.executable

def venv_ok(system:str)->bool:
    py = python_for(system)
    return py.exists() and subprocess.run([str(py), '-c', CHECK_IMPORT[system]], capture_output=True).returncode == 0

def install(system:str, log=print)->dict:
    "Create benchmarks/.venvs/<system> (if needed) and pip-install the system into it; return versions."
    d = VENVS/system
    if not venv_ok(system):
        t = time.perf_counter()
        if not (d/'bin'/'python').exists():
            d.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([base_python(), '-m', 'venv', str(d)], check=True)
        pip = [str(d/'bin'/'python'), '-m', 'pip', 'install', '--quiet']
        subprocess.run(pip + ['--upgrade', 'pip', 'wheel', 'setuptools'], check=True)
        log(f"[install] {system}: pip install {' '.join(INSTALL[system])}")
        subprocess.run(pip + INSTALL[system], check=True)
        if not venv_ok(system):
            err = subprocess.run([str(python_for(system)), '-c', CHECK_IMPORT[system]], capture_output=True, text=True).stderr
            raise RuntimeError(f"{system} venv does not import after install:\n{err[-2000:]}")
        log(f"[install] {system}: done in {time.perf_counter()-t:.0f} s")
    return versions(system)

def versions(system:str)->dict:
    pk = dict(assembly_line=['assembly_line', 'scikit-learn', 'lightgbm', 'pandas', 'numpy', 'torch'],
              lightgbm=['lightgbm'], hist_gb=['scikit-learn'],
              flaml=['flaml', 'lightgbm', 'xgboost', 'scikit-learn', 'pandas', 'numpy'],
              autogluon=['autogluon.tabular', 'autogluon.core', 'lightgbm', 'catboost', 'xgboost', 'xgboost-cpu', 'scikit-learn',
                         'pandas', 'numpy', 'torch'])[system]
    code = ("import importlib.metadata as m, json\nout={}\nfor p in %r:\n    try: out[p]=m.version(p)\n"
            "    except m.PackageNotFoundError: out[p]=None\nprint(json.dumps(out))" % pk)
    r = subprocess.run([str(python_for(system)), '-c', code], capture_output=True, text=True)
    try: return json.loads(r.stdout)
    except json.JSONDecodeError: return {'error': r.stderr[-300:]}

# ---------------------------------------------------------------------------------------------------------- data
def prepare(name:str, seed:int=0, force:bool=False)->Path:
    "Split one example data set once into train/test Parquet files (run in the repo venv)."
    d = DATA/f"{name}-s{seed}"
    if (d/'meta.json').exists() and not force: return d
    import numpy as np, pandas as pd
    from sklearn.model_selection import train_test_split
    from assembly_line.datasets import load_example, EXAMPLES
    ex = EXAMPLES[name]; target, task = ex.target, str(ex.task.value if hasattr(ex.task, 'value') else ex.task)
    df = load_example(name)
    df = df[df[target].notna()].reset_index(drop=True)
    if name == 'hotel_bookings':
        df = df.drop(columns=['reservation_status', 'reservation_status_date'])
        df = df.sample(n=min(HOTEL_ROWS, len(df)), random_state=seed).reset_index(drop=True)
    if task == 'regression': df[target] = df[target].astype(float)
    strat = df[target] if task != 'regression' else None
    train, test = train_test_split(df, test_size=0.2, random_state=seed, stratify=strat)
    d.mkdir(parents=True, exist_ok=True)
    train.reset_index(drop=True).to_parquet(d/'train.parquet', index=False)
    test.reset_index(drop=True).to_parquet(d/'test.parquet', index=False)
    classes = None if task == 'regression' else [v.item() if hasattr(v, 'item') else v for v in np.sort(df[target].unique())]
    meta = dict(name=name, target=target, task=task, metric=METRIC[task], classes=classes, seed=seed,
                n_train=len(train), n_test=len(test), n_features=df.shape[1]-1)
    (d/'meta.json').write_text(json.dumps(meta, indent=1))
    return d

# ---------------------------------------------------------------------------------------------------------- child
class PeakRSS:
    "Peak summed RSS (MiB) of this process and all its descendants, sampled in a thread."
    def __init__(self, every=0.1): self.every, self.peak, self._stop = every, 0., threading.Event()
    def _sample(self):
        import psutil
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            try: procs = [me] + me.children(recursive=True)
            except psutil.Error: procs = [me]
            for p in procs:
                try: total += p.memory_info().rss
                except psutil.Error: pass
            self.peak = max(self.peak, total/2**20)
            self._stop.wait(self.every)
    def __enter__(self): self._t = threading.Thread(target=self._sample, daemon=True); self._t.start(); return self
    def __exit__(self, *a): self._stop.set(); self._t.join()

def _ordinal(train, test):
    "Default-model inputs: categoricals ordinal-encoded (unseen/missing -> NaN), datetimes as days, all float."
    import numpy as np, pandas as pd
    from sklearn.preprocessing import OrdinalEncoder
    train, test = train.copy(), test.copy()
    for c in train.columns:
        if pd.api.types.is_datetime64_any_dtype(train[c]):
            for f in (train, test): f[c] = (f[c] - pd.Timestamp('1970-01-01')).dt.days.astype(float)
    cats = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c]) or pd.api.types.is_bool_dtype(train[c])]
    if cats:
        enc = OrdinalEncoder(handle_unknown='use_encoded_value', unknown_value=np.nan, encoded_missing_value=np.nan)
        enc.fit(train[cats].astype(str).where(train[cats].notna()))
        for f in (train, test): f[cats] = enc.transform(f[cats].astype(str).where(f[cats].notna()))
    return train.astype(float), test.astype(float)

def fit_predict(system, train, test, meta, budget, seed, workdir):
    "Fit `system` on train; return (fit seconds, scores on test: proba (n, k) in meta['classes'] order or values, notes)."
    import numpy as np, pandas as pd
    target, task, metric, classes = meta['target'], meta['task'], meta['metric'], meta['classes']
    X, y, Xt = train.drop(columns=[target]), train[target], test.drop(columns=[target])
    clf = task != 'regression'
    notes = {}
    def proba_frame(p, cols):
        "Probabilities in meta['classes'] order, columns matched by str(label), else by str(label).strip()."
        p = pd.DataFrame(np.asarray(p, dtype=float), columns=[str(c) for c in cols])
        want = [str(c) for c in classes]
        if set(want) - set(p.columns):
            stripped = {c.strip(): c for c in p.columns}
            if set(c.strip() for c in want) <= set(stripped):
                notes['label_mismatch'] = f"probability columns {list(p.columns)} != class labels {want}; matched after strip()"
                p = p.rename(columns={stripped[w.strip()]: w for w in want})
            else: raise ValueError(f"probability columns {list(p.columns)} do not match the class labels {want}")
        return p[want].to_numpy()
    if system == 'assembly_line':
        from assembly_line.line import AssemblyLine
        m = AssemblyLine(target=target, time_budget=budget, metric=metric, seed=seed)
        t = time.perf_counter(); m.fit(train); fit_s = time.perf_counter() - t
        out = proba_frame(m.predict_proba(test.drop(columns=[target])), m.classes_) if clf else m.predict(Xt).to_numpy(float)
        s = m.summary()
        notes.update(best=s['best'], internal_fit_s=s['fit_seconds'], internal_holdout=s['holdout'],
                     stages=[(x['stage'], x['given'], x['used'], x['note']) for x in s['stages']],
                     leaderboard=pd.DataFrame(m.leaderboard_).head(15).to_dict('records'))
    elif system in ('lightgbm', 'hist_gb'):
        Xe, Xte = _ordinal(X, Xt)
        if system == 'lightgbm':
            import lightgbm as lgb
            m = (lgb.LGBMClassifier if clf else lgb.LGBMRegressor)(random_state=seed, verbose=-1)
        else:
            from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
            m = (HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor)(random_state=seed)
        t = time.perf_counter(); m.fit(Xe, y); fit_s = time.perf_counter() - t
        out = proba_frame(m.predict_proba(Xte), m.classes_) if clf else m.predict(Xte)
    elif system == 'flaml':
        from flaml import AutoML
        m = AutoML()
        t = time.perf_counter()
        m.fit(X, y, task='classification' if clf else 'regression', time_budget=budget, metric=metric, seed=seed,
              verbose=0, log_file_name=str(Path(workdir)/'flaml.log'))
        fit_s = time.perf_counter() - t
        out = proba_frame(m.predict_proba(Xt), m.classes_) if clf else np.asarray(m.predict(Xt), dtype=float)
        notes.update(best=m.best_estimator, best_config=str(m.best_config))
    elif system == 'autogluon':
        from autogluon.tabular import TabularPredictor
        ag_metric = dict(roc_auc='roc_auc', log_loss='log_loss', rmse='root_mean_squared_error')[metric]
        m = TabularPredictor(label=target, eval_metric=ag_metric, problem_type=task, path=str(Path(workdir)/'ag'), verbosity=0)
        t = time.perf_counter(); m.fit(train, time_limit=budget); fit_s = time.perf_counter() - t
        if clf:
            p = m.predict_proba(test.drop(columns=[target])); out = proba_frame(p.to_numpy(), p.columns)
        else: out = np.asarray(m.predict(test.drop(columns=[target])), dtype=float)
        lb = m.leaderboard(silent=True)
        notes.update(best=m.model_best, models=lb[['model', 'score_val']].head(20).to_dict('records'))
    else: raise ValueError(f"unknown system {system!r}")
    return fit_s, np.asarray(out, dtype=float), notes

def child(args):
    "One (data set, system) fit: read the split, fit, save scores and numbers to --out."
    import resource, numpy as np, pandas as pd, warnings
    warnings.filterwarnings('ignore')
    d, out = Path(args.data), Path(args.out)
    meta = json.loads((d/'meta.json').read_text())
    train, test = pd.read_parquet(d/'train.parquet'), pd.read_parquet(d/'test.parquet')
    load0 = os.getloadavg()
    with PeakRSS() as peak:
        try: fit_s, scores, notes = fit_predict(args.child, train, test, meta, args.budget, args.seed, out)
        except Exception as e:
            if getattr(e, 'problems', None): print('problems:', e.problems, file=sys.stderr)
            raise
    # VmHWM (this process's own peak) rather than ru_maxrss: Linux carries ru_maxrss over fork + exec, so it would
    # report the parent's resident set for a small child
    self_max = next((int(l.split()[1])/1024 for l in open('/proc/self/status') if l.startswith('VmHWM:')), 0.)
    kids_max = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024
    np.save(out/'scores.npy', scores)
    (out/'fit.json').write_text(json.dumps(dict(fit_s=fit_s, peak_mib=max(peak.peak, self_max), tree_peak_mib=peak.peak, self_hwm_mib=self_max,
                                                children_maxrss_mib=kids_max, load_start=load0, load_end=os.getloadavg(),
                                                notes=notes), default=str))

# ---------------------------------------------------------------------------------------------------------- parent
def score(meta, scores)->float:
    import numpy as np, pandas as pd
    from sklearn.metrics import roc_auc_score, log_loss, mean_squared_error
    d = DATA/f"{meta['name']}-s{meta['seed']}"
    y = pd.read_parquet(d/'test.parquet')[meta['target']].to_numpy()
    if meta['task'] == 'regression': return float(np.sqrt(mean_squared_error(y, scores)))
    classes = meta['classes']
    if meta['task'] == 'binary': return float(roc_auc_score((y == classes[1]).astype(int), scores[:, 1]))
    p = np.clip(scores, 0, None); p = p / p.sum(axis=1, keepdims=True)
    return float(log_loss(y, p, labels=classes))

def run_one(name, system, budget, seed, log=print, omp_passive=True)->dict:
    d = DATA/f"{name}-s{seed}"
    meta = json.loads((d/'meta.json').read_text())
    out = RESULTS/'runs'/f"{name}-s{seed}"/system
    shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS='ignore')
    if omp_passive: env['OMP_WAIT_POLICY'] = 'PASSIVE'
    cmd = [str(python_for(system)), str(Path(__file__).resolve()), '--child', system, '--data', str(d), '--out', str(out),
           '--budget', str(budget), '--seed', str(seed)]
    row = dict(dataset=name, system=system, task=meta['task'], metric=meta['metric'], n_train=meta['n_train'],
               n_test=meta['n_test'], budget=budget, load_before=os.getloadavg()[0])
    t = time.perf_counter()
    timeout = 3*budget + 180
    try:
        with open(out/'child.log', 'w') as f:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout, env=env, cwd=str(out))
        rc = r.returncode
    except subprocess.TimeoutExpired: rc = 'timeout'
    row['wall_s'] = time.perf_counter() - t
    if rc == 0 and (out/'fit.json').exists():
        import numpy as np
        fit = json.loads((out/'fit.json').read_text())
        row.update(ok=True, score=score(meta, np.load(out/'scores.npy')), fit_s=fit['fit_s'], peak_mib=fit['peak_mib'],
                   in_budget=fit['fit_s'] <= SLACK*budget, notes=fit['notes'], load_during=fit['load_end'][0])
    else:
        tail = (out/'child.log').read_text(errors='replace')[-1500:] if (out/'child.log').exists() else ''
        row.update(ok=False, score=None, fit_s=None, peak_mib=None, in_budget=False, error=f"rc={rc}: {tail}")
    s = (f"{row['score']:.4f}" if row['ok'] else 'FAILED')
    log(f"  {name:15s} {system:14s} {meta['metric']:8s} {s:>8s}  fit {row['fit_s'] or 0:6.1f} s  "
        f"peak {row['peak_mib'] or 0:7.0f} MiB  (wall {row['wall_s']:.0f} s, load {row['load_before']:.1f})"
        + ('' if row['ok'] else f"\n    {row['error'][-600:]}"))
    return row

def summarise(rows, systems, datasets):
    "Per data set ranks and relative scores; per system mean rank, mean relative score, budget compliance."
    import numpy as np
    per = {}
    for name in datasets:
        rs = {r['system']: r for r in rows if r['dataset'] == name}
        if not rs: continue
        metric = next(iter(rs.values()))['metric']
        ok = {s: r['score'] for s, r in rs.items() if r['ok']}
        if not ok: continue
        best = max(ok.values()) if GREATER[metric] else min(ok.values())
        key = {s: (-v if GREATER[metric] else v) for s, v in ok.items()}
        # average ranks for ties; failures share the last places
        order = sorted(key.values())
        ranks = {s: np.mean([i+1 for i, v in enumerate(order) if v == key[s]]) for s in ok}
        nf = [s for s in rs if s not in ok]
        for s in nf: ranks[s] = len(ok) + (len(nf)+1)/2
        rel = {s: ((v/best if GREATER[metric] else best/v) if v else 0.) for s, v in ok.items()}
        rel.update({s: 0. for s in nf})
        per[name] = dict(metric=metric, best=best, ranks=ranks, rel=rel)
    summ = {}
    for s in systems:
        rk = [p['ranks'][s] for p in per.values() if s in p['ranks']]
        rl = [p['rel'][s] for p in per.values() if s in p['rel']]
        mine = [r for r in rows if r['system'] == s]
        summ[s] = dict(mean_rank=float(np.mean(rk)) if rk else None, mean_rel=float(np.mean(rl)) if rl else None,
                       n=len(mine), failed=sum(not r['ok'] for r in mine),
                       over_budget=[r['dataset'] for r in mine if r['ok'] and not r['in_budget']],
                       max_fit_over_budget=max([r['fit_s']/r['budget'] for r in mine if r['ok']], default=None),
                       all_in_budget=all(r['in_budget'] for r in mine))
    return per, summ

def markdown(rows, per, summ, systems, datasets, info)->str:
    L = [f"# AssemblyLine vs peers — {info['budget']} s budget, seed {info['seed']}", '',
         f"Command: `{info['command']}`  ", f"Machine: {info['cpus']} CPUs; load average at start {info['load_start']}, "
         f"at end {info.get('load_end')}; started {info['started']}; OMP_WAIT_POLICY={info['omp_wait_policy'] or 'default'}.  ",
         "Score: ROC-AUC (binary, higher is better), log loss (multiclass) and RMSE (regression) (lower is better), on a "
         "seeded stratified 80/20 holdout shared by all systems; fit = wall seconds of the fit call; peak = summed RSS "
         "of the process tree.", '']
    L += ['| data set | metric | ' + ' | '.join(systems) + ' |', '|---|---|' + '---|'*len(systems)]
    for name in datasets:
        rs = {r['system']: r for r in rows if r['dataset'] == name}
        if not rs: continue
        metric = next(iter(rs.values()))['metric']
        cells = []
        for s in systems:
            r = rs.get(s)
            if r is None: cells.append('—'); continue
            if not r['ok']: cells.append('failed'); continue
            best = per[name]['best'] == r['score']
            sc = f"**{r['score']:.4f}**" if best else f"{r['score']:.4f}"
            over = '' if r['in_budget'] else ' ⚠'
            cells.append(f"{sc}<br>{r['fit_s']:.1f} s{over}, {r['peak_mib']:.0f} MiB")
        L.append(f"| {name} ({rs[next(iter(rs))]['n_train']:,} rows) | {metric} | " + ' | '.join(cells) + ' |')
    L += ['', '| system | mean rank | mean score / best | fits | failed | all fits ≤ 1.1 × budget | slowest fit / budget |',
          '|---|---|---|---|---|---|---|']
    for s in sorted(systems, key=lambda s: summ[s]['mean_rank'] if summ[s]['mean_rank'] is not None else 99):
        x = summ[s]
        L.append(f"| {s} | {x['mean_rank']:.2f} | {x['mean_rel']:.4f} | {x['n']} | {x['failed']} | "
                 f"{'yes' if x['all_in_budget'] else 'no: ' + ', '.join(x['over_budget'])} | "
                 f"{'—' if x['max_fit_over_budget'] is None else format(x['max_fit_over_budget'], '.2f')} |"
                 if x['mean_rank'] is not None else f"| {s} | — | — | {x['n']} | {x['failed']} | — | — |")
    L += ['', 'Versions: ' + '; '.join(f"{s}: " + ', '.join(f"{k} {v}" for k, v in info['versions'].get(s, {}).items() if v)
                                       for s in systems)]
    return '\n'.join(L) + '\n'

def merge(files, stem):
    "Combine result files: rows keyed by (data set, system), later files win; write and print the table."
    rows, infos = {}, []
    for f in files:
        d = json.loads(Path(f).read_text()); infos.append(d['info'])
        for r in d['rows']:
            if r.get('ok') or (r['dataset'], r['system']) not in rows: rows[r['dataset'], r['system']] = r
    budgets = {i['budget'] for i in infos}
    if len(budgets) > 1: raise SystemExit(f"cannot merge runs with different budgets: {budgets}")
    datasets = [d for d in DATASETS if any(k[0] == d for k in rows)]
    systems = [s for s in SYSTEMS if any(k[1] == s for k in rows)]
    rows = [rows[k] for k in sorted(rows, key=lambda k: (datasets.index(k[0]), systems.index(k[1])))]
    info = dict(infos[0], command=' + '.join(i['command'] for i in infos), load_end=infos[-1].get('load_end'),
                merged=[str(f) for f in files], versions={k: v for i in infos for k, v in i['versions'].items()})
    per, summ = summarise(rows, systems, datasets)
    md = markdown(rows, per, summ, systems, datasets, info)
    stem.with_suffix('.json').write_text(json.dumps(dict(info=info, rows=rows, per_dataset=per, summary=summ), indent=1, default=str))
    stem.with_suffix('.md').write_text(md)
    print(md); return 0

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--datasets', default=','.join(DATASETS), help='comma-separated example names')
    p.add_argument('--systems', default=','.join(SYSTEMS), help='comma-separated: ' + ','.join(SYSTEMS))
    p.add_argument('--budget', type=float, default=60., help='seconds per fit (default 60)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--skip-install', action='store_true', help="use the peers' venvs as they are")
    p.add_argument('--install-only', action='store_true', help="create/install the peers' venvs and stop")
    p.add_argument('--quick', action='store_true', help=f'{QUICK_BUDGET} s budget on {", ".join(QUICK_DATASETS)}')
    p.add_argument('--omp-spin', action='store_true',
                   help='leave OpenMP at its default busy-wait policy (default: OMP_WAIT_POLICY=PASSIVE for every child, '
                        'since spinning OpenMP threads make LightGBM/HGB fits 10-50x slower on a loaded 2-core machine)')
    p.add_argument('--out', default=None, help='results file stem (default benchmarks/results/peers, quick: peers_quick)')
    p.add_argument('--merge', default=None,
                   help='comma-separated result JSON files to combine (a later file replaces a (data set, system) row of an '
                        'earlier one) into --out; runs nothing')
    p.add_argument('--child', default=None, help=argparse.SUPPRESS)
    p.add_argument('--data', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child: return child(args)
    if args.merge: return merge([Path(f) for f in args.merge.split(',')], Path(args.out) if args.out else RESULTS/'peers')
    datasets = [d for d in args.datasets.split(',') if d]
    systems = [s for s in args.systems.split(',') if s]
    if args.quick:
        budget = QUICK_BUDGET if '--budget' not in (argv or sys.argv) else args.budget
        if '--datasets' not in (argv or sys.argv): datasets = QUICK_DATASETS
    else: budget = args.budget
    bad = [s for s in systems if s not in SYSTEMS] + [d for d in datasets if d not in DATASETS]
    if bad: p.error(f"unknown system/data set: {bad}")
    stem = Path(args.out) if args.out else RESULTS/('peers_quick' if args.quick else 'peers')
    started = time.strftime('%Y-%m-%d %H:%M:%S')
    load_start = [round(x, 2) for x in os.getloadavg()]
    print(f"bench_peers: {len(datasets)} data sets x {len(systems)} systems, budget {budget:g} s, seed {args.seed}; "
          f"{os.cpu_count()} CPUs; load average at start {load_start}", flush=True)
    git = lambda *a: subprocess.run(['git', '-C', str(REPO), *a], capture_output=True, text=True).stdout.strip()
    commit, dirty = git('rev-parse', '--short', 'HEAD'), git('status', '--porcelain', '--', 'assembly_line')
    print(f"repo at {commit}" + (f"; uncommitted library changes: {' '.join(l.split()[-1] for l in dirty.splitlines())}" if dirty else ''), flush=True)
    vers = {}
    for s in systems:
        if s in INSTALL and not args.skip_install: vers[s] = install(s, log=lambda m: print(m, flush=True))
        elif s in INSTALL and not venv_ok(s):
            print(f"[skip] {s}: no working venv at {VENVS/s} (run without --skip-install)", flush=True)
        else: vers[s] = versions(s)
    if args.install_only:
        print(json.dumps(vers, indent=1)); return 0
    systems = [s for s in systems if s in vers]
    for name in datasets:
        prepare(name, args.seed)
    rows = []
    raw = stem.with_suffix('.json')
    info = dict(command=' '.join(['python', 'benchmarks/bench_peers.py'] + (argv if argv is not None else sys.argv[1:])),
                budget=budget, seed=args.seed, cpus=os.cpu_count(), commit=commit, dirty_library=dirty.splitlines(),
                omp_wait_policy=None if args.omp_spin else 'PASSIVE', started=started, load_start=load_start, versions=vers)
    for name in datasets:
        print(f"[{name}]", flush=True)
        for s in systems:
            rows.append(run_one(name, s, budget, args.seed, log=lambda m: print(m, flush=True), omp_passive=not args.omp_spin))
            raw.parent.mkdir(parents=True, exist_ok=True)
            raw.write_text(json.dumps(dict(info=info, rows=rows), indent=1, default=str))   # partial results survive a crash
    info['load_end'] = [round(x, 2) for x in os.getloadavg()]; info['finished'] = time.strftime('%Y-%m-%d %H:%M:%S')
    per, summ = summarise(rows, systems, datasets)
    md = markdown(rows, per, summ, systems, datasets, info)
    raw.write_text(json.dumps(dict(info=info, rows=rows, per_dataset=per, summary=summ), indent=1, default=str))
    stem.with_suffix('.md').write_text(md)
    print('\n' + md)
    print(f"load average at end {info['load_end']}; wrote {stem.with_suffix('.md')} and {raw}")
    return 0

if __name__ == '__main__':
    sys.exit(main())
