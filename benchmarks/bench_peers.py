"""AssemblyLine against its peers: FLAML, AutoGluon, and default LightGBM / HistGradientBoosting, on the same splits.

    .venv/bin/python benchmarks/bench_peers.py                       # 8 data sets x 5 systems x 60 s (~45 min)
    .venv/bin/python benchmarks/bench_peers.py --quick               # 10 s budget, penguins + titanic: end-to-end check
    .venv/bin/python benchmarks/bench_peers.py --systems assembly_line,lightgbm --datasets adult,cars --budget 30
    .venv/bin/python benchmarks/bench_peers.py --install-only        # only create the peers' venvs
    .venv/bin/python benchmarks/bench_peers.py --merge a.json,b.json --out benchmarks/results/peers   # rerun rows win
    .venv/bin/python benchmarks/bench_peers.py --suite --seeds 0,1   # the wide suite (benchmarks/suite.py), 2 split seeds
    .venv/bin/python benchmarks/bench_peers.py --tables wage,nass_cds --systems assembly_line,lightgbm,hist_gb --budget 10

Data, wide suite (`--suite`, or `--tables a,b,c` for a subset; `--seeds`, default 0,1). Each table of
`benchmarks/suite.py` (declared ids and leaks dropped, at most 20,000 rows) is split 75/25 per seed, stratified for
classification, into `benchmarks/results/data/suite/<name>-s<seed>/`. A (table, seed) is one unit of ranking.

Data, old mode (`--datasets`, `--seed`). Each data set comes from `assembly_line.datasets.load_example` (run in the repo's venv) and is split once,
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

Fit and predict run as two processes. The fit process reads the training file, fits, saves the model and exits; for
`assembly_line` it is the real command `assembly-line fit train.parquet --target ... --time-budget B --metric ...
--seed ... --out MODEL` (the others: this file with `--child SYSTEM --phase fit`, saving a pickle or AutoGluon's
folder). The predict process loads the saved model and writes the test scores; it is not timed against the budget.

Measures. Command wall time = this parent's clock from starting the fit process to its exit (interpreter start,
imports, reading, fit, save, worker shutdown); a command is within budget when it is <= 1.05 x budget. Fit time = the
fit call alone (for `assembly_line` the line's own `fit_seconds`); a fit inside budget means fit time <= 1.1 x budget.
Peak memory = the peak of the summed resident set (RSS) of the fit process and all its descendants, sampled every
0.1 s by this parent with psutil (which also sees worker processes such as loky/joblib pools), never below what the
child reports of itself; the same sum of PSS (proportional set size) is reported beside it, since an RSS sum counts a
forked process's shared pages twice (a short-lived fork of a 230 MiB LightGBM child shows as 460 MiB). This parent scores all systems in one place with scikit-learn: ROC-AUC (binary), log loss
(multiclass), RMSE (regression). Summary: per unit (data set, seed) the rank of each system (failures rank last), then
mean rank, the mean normalized score ((score - constant prediction)/(best - constant prediction): 0 = the training
class shares or mean, 1 = the best system) and the mean score relative to the best (AUC: score/best; losses:
best/score); a failure counts 0 in both; per table (scores averaged over seeds) the wins/losses of each system against `lightgbm` defaults and the
tables where it is worse by more than 0.5 % of its own score.

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
SLACK = 1.10          # fit call <= 1.1 x budget
CMD_SLACK = 1.05      # whole fit command <= 1.05 x budget (issue 15)
LOSS_TOL = 0.005      # "loses to LightGBM defaults" by more than 0.5 % of its own score
REPO_CLI = REPO/'.venv'/'bin'/'assembly-line'
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
def data_dir(name:str, seed:int, suite:bool=False)->Path:
    return DATA/'suite'/f"{name}-s{seed}" if suite else DATA/f"{name}-s{seed}"

def prepare_suite(name:str, seed:int=0, force:bool=False)->Path:
    "Split one wide-suite table (benchmarks/suite.py) 75/25 into train/test Parquet files (run in the repo venv)."
    import numpy as np
    sys.path.insert(0, str(HERE)); import suite
    d, t = data_dir(name, seed, suite=True), suite.SUITE[name]
    # a split made under another declaration of the table (target, drops, cap, test share) is made again
    spec = dict(target=t.target, task=t.task, drop=sorted(t.drop), cap=suite.CAP, test_size=suite.TEST_SIZE, sample_seed=suite.SAMPLE_SEED)
    if (d/'meta.json').exists() and not force and json.loads((d/'meta.json').read_text()).get('spec') == spec: return d
    train, test = suite.split(name, seed)
    d.mkdir(parents=True, exist_ok=True)
    train.to_parquet(d/'train.parquet', index=False); test.to_parquet(d/'test.parquet', index=False)
    classes = None if t.task == 'regression' else [v.item() if hasattr(v, 'item') else v
                                                    for v in np.sort(np.concatenate([train[t.target].unique(), test[t.target].unique()]))]
    if classes is not None: classes = sorted(set(classes), key=classes.index)
    meta = dict(name=name, target=t.target, task=t.task, metric=METRIC[t.task], classes=classes, seed=seed, suite=True,
                dir=str(d), n_train=len(train), n_test=len(test), n_features=train.shape[1]-1, spec=spec)
    (d/'meta.json').write_text(json.dumps(meta, indent=1))
    return d

def prepare(name:str, seed:int=0, force:bool=False)->Path:
    "Split one example data set once into train/test Parquet files (run in the repo venv)."
    d = data_dir(name, seed)
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
    meta = dict(name=name, target=target, task=task, metric=METRIC[task], classes=classes, seed=seed, dir=str(d),
                n_train=len(train), n_test=len(test), n_features=df.shape[1]-1)
    (d/'meta.json').write_text(json.dumps(meta, indent=1))
    return d

# ---------------------------------------------------------------------------------------------------------- child
class PeakRSS:
    """Peak summed RSS and PSS (MiB) of a process (default: this one) and all its descendants, sampled in a thread.
    The RSS sum counts pages that forked workers share with their parent once per process (a short-lived fork of a
    1 GB process adds 1 GB); the PSS sum splits shared pages between the processes that share them."""
    def __init__(self, every=0.1, pid=None):
        self.every, self.pid, self.peak, self.peak_pss, self._stop = every, pid, 0., 0., threading.Event()
    def _sample(self):
        import psutil
        try: me = psutil.Process(self.pid)
        except psutil.Error: return
        while not self._stop.is_set():
            rss = pss = 0
            try: procs = [me] + me.children(recursive=True)
            except psutil.Error: procs = [me]
            for p in procs:
                try: m = p.memory_full_info(); rss += m.rss; pss += getattr(m, 'pss', m.rss)
                except psutil.AccessDenied:
                    try: m = p.memory_info(); rss += m.rss; pss += m.rss
                    except psutil.Error: pass
                except psutil.Error: pass
            self.peak, self.peak_pss = max(self.peak, rss/2**20), max(self.peak_pss, pss/2**20)
            self._stop.wait(self.every)
    def __enter__(self): self._t = threading.Thread(target=self._sample, daemon=True); self._t.start(); return self
    def __exit__(self, *a): self._stop.set(); self._t.join()

def _ordinal(train, test):
    "Default-model inputs (benchmarks/suite.py's `ordinal_frames`): categoricals ordinal-encoded, datetimes as days, all float."
    sys.path.insert(0, str(HERE)); import suite
    return suite.ordinal_frames(train, test)

def proba_frame(p, cols, classes, notes):
    "Probabilities in `classes` order, columns matched by str(label), else by str(label).strip()."
    import numpy as np, pandas as pd
    p = pd.DataFrame(np.asarray(p, dtype=float), columns=[str(c) for c in cols])
    want = [str(c) for c in classes]
    if set(want) - set(p.columns):
        stripped = {c.strip(): c for c in p.columns}
        if set(c.strip() for c in want) <= set(stripped):
            notes['label_mismatch'] = f"probability columns {list(p.columns)} != class labels {want}; matched after strip()"
            p = p.rename(columns={stripped[w.strip()]: w for w in want})
        else: raise ValueError(f"probability columns {list(p.columns)} do not match the class labels {want}")
    return p[want].to_numpy()

def fit_model(system, train, meta, budget, seed, workdir):
    "Fit `system` on train and save it under workdir/model; return (fit seconds, notes). (`assembly_line` fits through its CLI.)"
    import pickle
    target, task, metric = meta['target'], meta['task'], meta['metric']
    X, y = train.drop(columns=[target]), train[target]
    clf, model = task != 'regression', Path(workdir)/'model'
    notes = {}
    if system in ('lightgbm', 'hist_gb'):
        Xe, _ = _ordinal(X, X.head(1))
        if system == 'lightgbm':
            import lightgbm as lgb
            m = (lgb.LGBMClassifier if clf else lgb.LGBMRegressor)(random_state=seed, verbose=-1)
        else:
            from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
            m = (HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor)(random_state=seed)
        t = time.perf_counter(); m.fit(Xe, y); fit_s = time.perf_counter() - t
        model.write_bytes(pickle.dumps(m))
    elif system == 'flaml':
        from flaml import AutoML
        m = AutoML()
        t = time.perf_counter()
        m.fit(X, y, task='classification' if clf else 'regression', time_budget=budget, metric=metric, seed=seed,
              verbose=0, log_file_name=str(Path(workdir)/'flaml.log'))
        fit_s = time.perf_counter() - t
        notes.update(best=m.best_estimator, best_config=str(m.best_config))
        model.write_bytes(pickle.dumps(m))
    elif system == 'autogluon':
        from autogluon.tabular import TabularPredictor
        ag_metric = dict(roc_auc='roc_auc', log_loss='log_loss', rmse='root_mean_squared_error')[metric]
        m = TabularPredictor(label=target, eval_metric=ag_metric, problem_type=task, path=str(model), verbosity=0)
        t = time.perf_counter(); m.fit(train, time_limit=budget); fit_s = time.perf_counter() - t
        m.save()
    else: raise ValueError(f"unknown system {system!r} for --phase fit")
    return fit_s, notes

def predict_model(system, train, test, meta, workdir):
    "Load the model saved under workdir/model; return (scores on test: proba (n, k) in meta['classes'] order or values, notes)."
    import pickle, numpy as np, pandas as pd
    target, task, classes = meta['target'], meta['task'], meta['classes']
    Xt, clf, model = test.drop(columns=[target]), task != 'regression', Path(workdir)/'model'
    notes = {}
    if system == 'assembly_line':
        from assembly_line.line import AssemblyLine
        m = AssemblyLine.load(model)
        out = proba_frame(m.predict_proba(Xt), m.classes_, classes, notes) if clf else m.predict(Xt).to_numpy(float)
        s = m.summary()
        notes.update(best=s['best'], internal_fit_s=s['fit_seconds'], internal_holdout=s['holdout'],
                     stages=[(x['stage'], x['given'], x['used'], x['note']) for x in s['stages']],
                     leaderboard=pd.DataFrame(m.leaderboard_).head(15).to_dict('records'))
    elif system in ('lightgbm', 'hist_gb'):
        _, Xte = _ordinal(train.drop(columns=[target]), Xt)    # the same encoder as the fit: fitted on train, deterministic
        m = pickle.loads(model.read_bytes())
        out = proba_frame(m.predict_proba(Xte), m.classes_, classes, notes) if clf else m.predict(Xte)
    elif system == 'flaml':
        m = pickle.loads(model.read_bytes())
        out = proba_frame(m.predict_proba(Xt), m.classes_, classes, notes) if clf else np.asarray(m.predict(Xt), dtype=float)
    elif system == 'autogluon':
        from autogluon.tabular import TabularPredictor
        m = TabularPredictor.load(str(model))
        if clf:
            p = m.predict_proba(Xt); out = proba_frame(p.to_numpy(), p.columns, classes, notes)
        else: out = np.asarray(m.predict(Xt), dtype=float)
        lb = m.leaderboard(silent=True)
        notes.update(best=m.model_best, models=lb[['model', 'score_val']].head(20).to_dict('records'))
    else: raise ValueError(f"unknown system {system!r}")
    return np.asarray(out, dtype=float), notes

def _self_hwm()->float:
    # VmHWM (this process's own peak) rather than ru_maxrss: Linux carries ru_maxrss over fork + exec, so it would
    # report the parent's resident set for a small child
    return next((int(l.split()[1])/1024 for l in open('/proc/self/status') if l.startswith('VmHWM:')), 0.)

def child(args):
    "One (data set, system) phase: fit (read train, fit, save the model, numbers to fit.json) or predict (scores.npy)."
    import resource, numpy as np, pandas as pd, warnings
    warnings.filterwarnings('ignore')
    d, out = Path(args.data), Path(args.out)
    meta = json.loads((d/'meta.json').read_text())
    train = pd.read_parquet(d/'train.parquet')
    load0 = os.getloadavg()
    if args.phase == 'fit':
        with PeakRSS() as peak:
            try: fit_s, notes = fit_model(args.child, train, meta, args.budget, args.seed, out)
            except Exception as e:
                if getattr(e, 'problems', None): print('problems:', e.problems, file=sys.stderr)
                raise
        self_max, kids_max = _self_hwm(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024
        (out/'fit.json').write_text(json.dumps(dict(fit_s=fit_s, peak_mib=max(peak.peak, self_max), tree_peak_mib=peak.peak,
                                                    self_hwm_mib=self_max, children_maxrss_mib=kids_max, load_start=load0,
                                                    load_end=os.getloadavg(), notes=notes), default=str))
    else:
        test = pd.read_parquet(d/'test.parquet')
        t = time.perf_counter(); scores, notes = predict_model(args.child, train, test, meta, out)
        np.save(out/'scores.npy', scores)
        (out/'predict.json').write_text(json.dumps(dict(predict_s=time.perf_counter() - t, notes=notes), default=str))

# ---------------------------------------------------------------------------------------------------------- parent
def score(meta, scores)->float:
    import numpy as np, pandas as pd
    from sklearn.metrics import roc_auc_score, log_loss, mean_squared_error
    d = Path(meta['dir']) if meta.get('dir') else data_dir(meta['name'], meta['seed'])
    y = pd.read_parquet(d/'test.parquet')[meta['target']].to_numpy()
    if meta['task'] == 'regression': return float(np.sqrt(mean_squared_error(y, scores)))
    classes = meta['classes']
    if meta['task'] == 'binary': return float(roc_auc_score((y == classes[1]).astype(int), scores[:, 1]))
    p = np.clip(scores, 0, None); p = p / p.sum(axis=1, keepdims=True)
    return float(log_loss(y, p, labels=classes))

def baseline(meta)->float:
    "The score of a constant prediction made from the training part: AUC 0.5, the class shares' log loss, the mean's RMSE."
    import numpy as np, pandas as pd
    d = Path(meta['dir']) if meta.get('dir') else data_dir(meta['name'], meta['seed'])
    y, yt = pd.read_parquet(d/'train.parquet')[meta['target']], pd.read_parquet(d/'test.parquet')[meta['target']]
    if meta['task'] == 'binary': return 0.5
    if meta['task'] == 'regression': return score(meta, np.full(len(yt), float(y.mean())))
    prior = y.value_counts(normalize=True).reindex(meta['classes']).fillna(0).to_numpy()
    return score(meta, np.tile(np.clip(prior, 1e-6, None), (len(yt), 1)))

def timed_process(cmd, log_file, timeout, env, cwd)->tuple:
    "Run `cmd` to its exit; return (exit code or 'timeout', wall seconds from start to exit, peak tree RSS and PSS in MiB)."
    t = time.perf_counter()
    with open(log_file, 'w') as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
        with PeakRSS(pid=proc.pid) as peak:
            try: rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9); proc.wait(); rc = 'timeout'
    return rc, time.perf_counter() - t, (peak.peak, peak.peak_pss)

def run_one(name, system, budget, seed, log=print, omp_passive=True, suite=False)->dict:
    "Fit `system` on one split (the whole fit command, timed and measured), then predict the test part and score it."
    d = data_dir(name, seed, suite)
    meta = json.loads((d/'meta.json').read_text())
    out = RESULTS/'runs'/('suite' if suite else '')/f"{name}-s{seed}"/system
    shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS='ignore')
    if omp_passive: env['OMP_WAIT_POLICY'] = 'PASSIVE'
    me = [str(python_for(system)), str(Path(__file__).resolve()), '--child', system, '--data', str(d), '--out', str(out),
          '--budget', str(budget), '--seed', str(seed)]
    if system == 'assembly_line':
        fit_cmd = [str(REPO_CLI), 'fit', str(d/'train.parquet'), '--target', meta['target'], '--out', str(out/'model'),
                   '--time-budget', str(budget), '--metric', meta['metric'], '--seed', str(seed)]
    else: fit_cmd = me + ['--phase', 'fit']
    row = dict(dataset=name, seed=seed, system=system, task=meta['task'], metric=meta['metric'], n_train=meta['n_train'],
               n_test=meta['n_test'], budget=budget, load_before=os.getloadavg()[0])
    timeout = 3*budget + 180
    rc, row['cmd_s'], (tree_peak, row['peak_pss_mib']) = timed_process(fit_cmd, out/'fit.log', timeout, env, str(out))
    row['load_after_fit'] = os.getloadavg()[0]
    if rc == 0: rc_p, row['predict_wall_s'], _ = timed_process(me + ['--phase', 'predict'], out/'predict.log', timeout, env, str(out))
    else: rc_p = None
    if rc == 0 and rc_p == 0 and (out/'scores.npy').exists():
        import numpy as np
        fit = json.loads((out/'fit.json').read_text()) if (out/'fit.json').exists() else {}
        pred = json.loads((out/'predict.json').read_text())
        notes = {**fit.get('notes', {}), **pred['notes']}
        fit_s = fit['fit_s'] if 'fit_s' in fit else notes.get('internal_fit_s')
        row.update(ok=True, score=score(meta, np.load(out/'scores.npy')), baseline=baseline(meta), fit_s=fit_s,
                   peak_mib=max(tree_peak, fit.get('peak_mib', 0.)), in_budget=fit_s is not None and fit_s <= SLACK*budget,
                   cmd_in_budget=row['cmd_s'] <= CMD_SLACK*budget, notes=notes)
    else:
        which = 'fit' if rc != 0 else 'predict'
        lf = out/f'{which}.log'
        tail = lf.read_text(errors='replace')[-1500:] if lf.exists() else ''
        row.update(ok=False, score=None, fit_s=None, peak_mib=tree_peak or None, in_budget=False, cmd_in_budget=False,
                   error=f"{which} rc={rc if which == 'fit' else rc_p}: {tail}")
    s = (f"{row['score']:.4f}" if row['ok'] else 'FAILED')
    log(f"  {name:15s} s{seed} {system:14s} {meta['metric']:8s} {s:>10s}  command {row['cmd_s']:6.1f} s  fit {row['fit_s'] or 0:6.1f} s  "
        f"peak {row['peak_mib'] or 0:7.0f} MiB  (load {row['load_before']:.1f} -> {row['load_after_fit']:.1f})"
        + ('' if row['ok'] else f"\n    {row['error'][-600:]}"))
    return row

def _mean(xs):
    import numpy as np
    return float(np.mean(xs)) if xs else None

def summarise(rows, systems, datasets):
    """Per unit (data set, seed) ranks and relative scores; per system mean rank, mean relative score, budget and memory;
    per table (mean over the seeds) wins/losses against LightGBM defaults."""
    import numpy as np
    seeds = sorted({r.get('seed', 0) for r in rows})
    per = {}
    for name in datasets:
        for seed in seeds:
            rs = {r['system']: r for r in rows if r['dataset'] == name and r.get('seed', 0) == seed}
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
            # normalized score: 0 = a constant prediction (class shares, mean), 1 = the best system; a failure counts 0
            base = next((r['baseline'] for r in rs.values() if r.get('baseline') is not None), None)
            norm = {s: ((v - base)/(best - base) if best != base else 1.) for s, v in ok.items()} if base is not None else {}
            if norm: norm.update({s: 0. for s in nf})
            per[name if len(seeds) == 1 else f"{name}@s{seed}"] = dict(dataset=name, seed=seed, metric=metric, best=best, baseline=base, ranks=ranks, rel=rel, norm=norm)
    # per table, scores averaged over the seeds where both ran: the gap to LightGBM defaults as a share of the system's score
    vs = {}
    if 'lightgbm' in systems:
        for name in datasets:
            rs = [r for r in rows if r['dataset'] == name]
            if not rs: continue
            metric = rs[0]['metric']
            for s in systems:
                if s == 'lightgbm': continue
                pairs = [(a['score'], b['score']) for a in rs for b in rs if a['system'] == s and b['system'] == 'lightgbm'
                         and a.get('seed', 0) == b.get('seed', 0) and b['ok']]
                mine = [a for a in rs if a['system'] == s]
                if not mine or not pairs: continue
                if any(x is None for x, _ in pairs): gap = float('inf')      # a failed fit loses
                else:
                    m, l = np.mean([x for x, _ in pairs]), np.mean([y for _, y in pairs])
                    gap = float(((l - m) if GREATER[metric] else (m - l))/abs(m)) if m else float('inf')
                vs.setdefault(s, {})[name] = gap
    summ = {}
    for s in systems:
        rk = [p['ranks'][s] for p in per.values() if s in p['ranks']]
        rl = [p['rel'][s] for p in per.values() if s in p['rel']]
        nm = [p['norm'][s] for p in per.values() if s in p.get('norm', {})]
        mine = [r for r in rows if r['system'] == s]
        cmd = [r['cmd_s'] for r in mine if r.get('cmd_s') is not None and r['ok']]
        peaks = [r['peak_mib'] for r in mine if r.get('peak_mib')]
        psss = [r['peak_pss_mib'] for r in mine if r.get('peak_pss_mib')]
        g = vs.get(s, {})
        summ[s] = dict(mean_rank=_mean(rk), mean_rel=_mean(rl), mean_norm=_mean(nm), n=len(mine), failed=sum(not r['ok'] for r in mine),
                       over_budget=[r['dataset'] for r in mine if r['ok'] and not r['in_budget']],
                       max_fit_over_budget=max([r['fit_s']/r['budget'] for r in mine if r['ok'] and r['fit_s'] is not None], default=None),
                       all_in_budget=all(r['in_budget'] for r in mine),
                       cmd_mean_s=_mean(cmd), cmd_max_over_budget=max([r['cmd_s']/r['budget'] for r in mine if r['ok'] and r.get('cmd_s') is not None], default=None),
                       cmd_over=[f"{r['dataset']}@s{r.get('seed', 0)}" for r in mine if r['ok'] and not r.get('cmd_in_budget', True)],
                       peak_max_mib=max(peaks, default=None), peak_mean_mib=_mean(peaks), peak_pss_max_mib=max(psss, default=None),
                       wins_vs_lgbm=sum(v < 0 for v in g.values()) if g else None, losses_vs_lgbm=sum(v > 0 for v in g.values()) if g else None,
                       big_losses_vs_lgbm={k: v for k, v in g.items() if v > LOSS_TOL})
    return per, summ

def markdown(rows, per, summ, systems, datasets, info)->str:
    seeds = sorted({r.get('seed', 0) for r in rows})
    title = 'wide suite' if info.get('suite') else 'old benchmark'
    L = [f"# AssemblyLine vs peers — {title}, {info['budget']} s budget, split seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}", '',
         f"Command: `{info['command']}`  ", f"Machine: {info['cpus']} CPUs; load average at start {info['load_start']}, "
         f"at end {info.get('load_end')}; started {info['started']}; OMP_WAIT_POLICY={info['omp_wait_policy'] or 'default'}.  ",
         "Score: ROC-AUC (binary, higher is better), log loss (multiclass) and RMSE (regression) (lower is better), on a "
         f"seeded stratified {'75/25' if info.get('suite') else '80/20'} holdout shared by all systems; command = wall seconds of the "
         "whole fit command (start to exit, with import and save; ⚠ over 1.05 × budget); peak = summed RSS of the fit "
         "process tree (PSS: shared pages split between the processes sharing them).", '']
    L += ['| data set | seed | metric | ' + ' | '.join(systems) + ' |', '|---|---|---|' + '---|'*len(systems)]
    for key, p in per.items():
        rs = {r['system']: r for r in rows if r['dataset'] == p['dataset'] and r.get('seed', 0) == p['seed']}
        cells = []
        for s in systems:
            r = rs.get(s)
            if r is None: cells.append('—'); continue
            if not r['ok']: cells.append('failed'); continue
            sc = f"**{r['score']:.4f}**" if p['best'] == r['score'] else f"{r['score']:.4f}"
            over = '' if r.get('cmd_in_budget', True) else ' ⚠'
            cells.append(f"{sc}<br>{r.get('cmd_s', 0):.1f} s{over}, {r['peak_mib']:.0f} MiB")
        L.append(f"| {p['dataset']} ({rs[next(iter(rs))]['n_train']:,} rows) | {p['seed']} | {p['metric']} | " + ' | '.join(cells) + ' |')
    L += ['', '| system | mean rank | mean normalized score | mean score / best | wins / losses vs lightgbm (tables) | fits | failed | '
          'command s mean | slowest command / budget | commands > 1.05 × budget | peak RSS MiB max (mean) | peak PSS MiB max |',
          '|---|---|---|---|---|---|---|---|---|---|---|---|']
    f2 = lambda v, f='.2f': '—' if v is None else format(v, f)
    for s in sorted(systems, key=lambda s: summ[s]['mean_rank'] if summ[s]['mean_rank'] is not None else 99):
        x = summ[s]
        wl = '—' if x['wins_vs_lgbm'] is None else f"{x['wins_vs_lgbm']} / {x['losses_vs_lgbm']}"
        L.append(f"| {s} | {f2(x['mean_rank'])} | {f2(x.get('mean_norm'), '.4f')} | {f2(x['mean_rel'], '.4f')} | {wl} | {x['n']} | {x['failed']} | "
                 f"{f2(x['cmd_mean_s'], '.1f')} | {f2(x['cmd_max_over_budget'])} | {len(x['cmd_over'])} | "
                 f"{f2(x['peak_max_mib'], '.0f')} ({f2(x['peak_mean_mib'], '.0f')}) | {f2(x.get('peak_pss_max_mib'), '.0f')} |")
    L.append('')
    for s in systems:
        b = summ[s]['big_losses_vs_lgbm']
        if s != 'lightgbm' and summ[s]['wins_vs_lgbm'] is not None:
            L.append(f"- {s} loses to LightGBM defaults by more than {LOSS_TOL:.1%} of its score on "
                     + (', '.join(f"{k} ({'failed' if v == float('inf') else format(v, '.1%')})" for k, v in sorted(b.items(), key=lambda kv: -kv[1])) or 'no table'))
    L += ['', 'Normalized score: (score - constant prediction) / (best - constant prediction) per unit (0 = the training '
          'class shares or mean, 1 = the best system). Score / best: AUC score/best, losses best/score. A failure counts 0 in both.',
          '', 'Versions: ' + '; '.join(f"{s}: " + ', '.join(f"{k} {v}" for k, v in info['versions'].get(s, {}).items() if v)
                                       for s in systems)]
    return '\n'.join(L) + '\n'

def _known_tables():
    sys.path.insert(0, str(HERE)); import suite
    return DATASETS + [n for n in suite.names() if n not in DATASETS]

def merge(files, stem):
    "Combine result files: rows keyed by (data set, seed, system), later files win; write and print the table."
    rows, infos = {}, []
    for f in files:
        d = json.loads(Path(f).read_text()); infos.append(d['info'])
        for r in d['rows']:
            k = (r['dataset'], r.get('seed', d['info'].get('seed', 0)), r['system'])
            r.setdefault('seed', k[1])
            if r.get('ok') or k not in rows: rows[k] = r
    budgets = {i['budget'] for i in infos}
    if len(budgets) > 1: raise SystemExit(f"cannot merge runs with different budgets: {budgets}")
    known = _known_tables()
    datasets = [d for d in known if any(k[0] == d for k in rows)]
    systems = [s for s in SYSTEMS if any(k[2] == s for k in rows)]
    rows = [rows[k] for k in sorted(rows, key=lambda k: (datasets.index(k[0]), k[1], systems.index(k[2])))]
    info = dict(infos[0], command=' + '.join(i['command'] for i in infos), load_end=infos[-1].get('load_end'),
                merged=[str(f) for f in files], versions={k: v for i in infos for k, v in i['versions'].items()})
    per, summ = summarise(rows, systems, datasets)
    md = markdown(rows, per, summ, systems, datasets, info)
    stem.with_suffix('.json').write_text(json.dumps(dict(info=info, rows=rows, per_dataset=per, summary=summ), indent=1, default=str))
    stem.with_suffix('.md').write_text(md)
    print(md); return 0

def main(argv=None):
    t_start = time.perf_counter()
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--datasets', default=','.join(DATASETS), help='old mode: comma-separated example names')
    p.add_argument('--suite', action='store_true', help='the wide suite of benchmarks/suite.py (all its tables unless --tables)')
    p.add_argument('--tables', default=None, help='comma-separated wide-suite tables (implies --suite)')
    p.add_argument('--systems', default=','.join(SYSTEMS), help='comma-separated: ' + ','.join(SYSTEMS))
    p.add_argument('--budget', type=float, default=60., help='seconds per fit (default 60)')
    p.add_argument('--seed', type=int, default=0, help='old mode: the split seed')
    p.add_argument('--seeds', default=None, help='comma-separated split seeds (default: 0,1 for the suite, --seed otherwise)')
    p.add_argument('--skip-install', action='store_true', help="use the peers' venvs as they are")
    p.add_argument('--install-only', action='store_true', help="create/install the peers' venvs and stop")
    p.add_argument('--quick', action='store_true', help=f'{QUICK_BUDGET} s budget on {", ".join(QUICK_DATASETS)}')
    p.add_argument('--omp-spin', action='store_true',
                   help='leave OpenMP at its default busy-wait policy (default: OMP_WAIT_POLICY=PASSIVE for every child, '
                        'since spinning OpenMP threads make LightGBM/HGB fits 10-50x slower on a loaded 2-core machine)')
    p.add_argument('--out', default=None, help='results file stem (default benchmarks/results/peers, quick: peers_quick, suite: peers_suite)')
    p.add_argument('--merge', default=None,
                   help='comma-separated result JSON files to combine (a later file replaces a (data set, seed, system) row of an '
                        'earlier one) into --out; runs nothing')
    p.add_argument('--child', default=None, help=argparse.SUPPRESS)
    p.add_argument('--phase', default='fit', choices=['fit', 'predict'], help=argparse.SUPPRESS)
    p.add_argument('--data', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child: return child(args)
    if args.merge: return merge([Path(f) for f in args.merge.split(',')], Path(args.out) if args.out else RESULTS/'peers')
    given = argv if argv is not None else sys.argv[1:]
    use_suite = args.suite or args.tables is not None
    systems = [s for s in args.systems.split(',') if s]
    if use_suite:
        if '--datasets' in given or args.quick: p.error('--suite/--tables and --datasets/--quick are two different modes')
        sys.path.insert(0, str(HERE)); import suite
        datasets = [d for d in args.tables.split(',') if d] if args.tables else suite.names()
        bad_tables = [d for d in datasets if d not in suite.SUITE]
        seeds = [int(x) for x in args.seeds.split(',')] if args.seeds else list(suite.SEEDS)
    else:
        datasets = [d for d in args.datasets.split(',') if d]
        bad_tables = [d for d in datasets if d not in DATASETS]
        seeds = [int(x) for x in args.seeds.split(',')] if args.seeds else [args.seed]
    if args.quick:
        budget = QUICK_BUDGET if '--budget' not in given else args.budget
        if '--datasets' not in given: datasets = QUICK_DATASETS
    else: budget = args.budget
    bad = [s for s in systems if s not in SYSTEMS] + bad_tables
    if bad: p.error(f"unknown system/data set: {bad}")
    stem = Path(args.out) if args.out else RESULTS/('peers_suite' if use_suite else 'peers_quick' if args.quick else 'peers')
    started = time.strftime('%Y-%m-%d %H:%M:%S')
    load_start = [round(x, 2) for x in os.getloadavg()]
    print(f"bench_peers: {len(datasets)} {'suite tables' if use_suite else 'data sets'} x {len(seeds)} seed(s) {seeds} x "
          f"{len(systems)} systems, budget {budget:g} s; {os.cpu_count()} CPUs; load average at start {load_start}", flush=True)
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
        for seed in seeds: (prepare_suite if use_suite else prepare)(name, seed)
    rows = []
    raw = stem.with_suffix('.json')
    info = dict(command=' '.join(['python', 'benchmarks/bench_peers.py'] + list(given)), suite=use_suite,
                budget=budget, seed=seeds[0], seeds=seeds, cpus=os.cpu_count(), commit=commit, dirty_library=dirty.splitlines(),
                omp_wait_policy=None if args.omp_spin else 'PASSIVE', started=started, load_start=load_start, versions=vers)
    for name in datasets:
        for seed in seeds:
            print(f"[{name} seed {seed}]", flush=True)
            for s in systems:
                rows.append(run_one(name, s, budget, seed, log=lambda m: print(m, flush=True), omp_passive=not args.omp_spin, suite=use_suite))
                raw.parent.mkdir(parents=True, exist_ok=True)
                raw.write_text(json.dumps(dict(info=info, rows=rows), indent=1, default=str))   # partial results survive a crash
    info['load_end'] = [round(x, 2) for x in os.getloadavg()]; info['finished'] = time.strftime('%Y-%m-%d %H:%M:%S')
    info['bench_wall_s'] = round(time.perf_counter() - t_start, 1)
    per, summ = summarise(rows, systems, datasets)
    md = markdown(rows, per, summ, systems, datasets, info)
    raw.write_text(json.dumps(dict(info=info, rows=rows, per_dataset=per, summary=summ), indent=1, default=str))
    stem.with_suffix('.md').write_text(md)
    print('\n' + md)
    print(f"load average at end {info['load_end']}; {info['bench_wall_s']:.0f} s in all; wrote {stem.with_suffix('.md')} and {raw}")
    return 0

if __name__ == '__main__':
    sys.exit(main())
