"""Contracts of `assembly_line.deploy`: registry round trips on SQLite and PostgreSQL, atomic registration under
SIGKILL, tampered bundles, model cards, chunked batch scoring and Dask batch scoring."""
from __future__ import annotations
import json, os, shutil, signal, subprocess, sys, textwrap, threading, time
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from assembly_line.core import IntegrityError, RegistryError, RegistryConflict, ConfigError, SchemaError, DataError
from assembly_line.line import AssemblyLine
from assembly_line.bundle import check_bundle, bundle_sha, add_files, CORE_FILES
from assembly_line.card import model_card, ModelCard, CardSection
from assembly_line.deploy import Registry, resolve, load_model, score_file, score_many


@pytest.fixture
def reg(sqlite_url, tmp_path):
    r = Registry(sqlite_url, root=tmp_path/'artifacts')
    yield r
    r.store.close()

@pytest.fixture(scope='module')
def fresh():
    "Adult rows the adult_line fixture did not train on (it used a seed-0 sample of 3,000)."
    from assembly_line.datasets import load_example
    full = load_example('adult', n=5000, seed=1)
    return full.iloc[:600].reset_index(drop=True)

def _copy(bundle, tmp_path, name='copy'):
    dest = tmp_path/name; shutil.copytree(bundle, dest); return dest


# ------------------------------------------------------------------------------------ registry round trip
@pytest.mark.slow
def test_register_promote_rollback_load(store_url, tmp_path, adult_line, adult_bundle, fresh):
    line, _ = adult_line
    reg = Registry(store_url, root=tmp_path/'art')
    v1 = reg.register(line, 'adult', alias='champion', who='ann', why='first', card=False)
    v2 = reg.register(adult_bundle, 'adult', alias='challenger', who='bob', why='second', card=False)
    v3 = reg.register(adult_bundle, 'adult', who='bob', card=False)
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    assert [Path(v.uri) for v in (v1, v2, v3)] == [reg.root/'adult'/f'v{i}' for i in (1, 2, 3)]
    vs = reg.versions('adult')
    assert vs['version'].tolist() == [1, 2, 3] and vs['aliases'].tolist() == [['champion'], ['challenger'], []]
    assert vs['metrics'].iloc[0]['metric'] == 'roc_auc' and 0.5 < vs['metrics'].iloc[0]['holdout'] <= 1
    assert vs['sha256'].tolist() == [bundle_sha(v.uri) for v in (v1, v2, v3)]
    # bare name = champion
    assert reg.get('adult').version == 1 and reg.resolve('adult')[1] == Path(v1.uri)
    assert reg.promote('adult', 2, who='carl', why='better') == 1
    assert reg.promote('adult', 3, who='carl', why='better still') == 2
    assert reg.get('adult@champion').version == 3
    # rollback walks the champion history back, one step at a time
    assert reg.rollback('adult', who='dora', why='bad outputs') == 2
    assert reg.rollback('adult', who='dora') == 1
    with pytest.raises(RegistryError, match='no earlier champion'): reg.rollback('adult')
    assert reg.rollback('adult', to_version=3, who='eve', why='explicit') == 3
    h = reg.history('adult', 'champion')
    assert h['new_version'].tolist() == [1, 2, 3, 2, 1, 3]
    assert h['old_version'].tolist()[1:] == [1, 2, 3, 2, 1]
    assert h['who'].tolist() == ['ann', 'carl', 'carl', 'dora', 'dora', 'eve']
    assert h['why'].iloc[3].startswith('rollback from v3')
    # loading by alias, by number, by folder gives the same predictions
    X = fresh.drop(columns='income').head(40)
    want = line.predict_proba(X).to_numpy()
    for ref in ('adult', 'adult@2', 'adult@challenger', str(Path(v1.uri))):
        np.testing.assert_allclose(reg.load(ref).predict_proba(X).to_numpy(), want)
    lm = load_model('adult@champion', reg, with_version=True)
    assert lm.version.version == 3 and lm.sha256 == v3.sha256 and lm.ref == 'adult@3'
    assert resolve('adult@1', reg)[0].version == 1
    reg.store.close()


def test_registry_defaults_and_module_functions(tmp_path, adult_bundle, monkeypatch):
    url = f"sqlite:///{tmp_path/'run'/'store.sqlite'}"
    (tmp_path/'run').mkdir()
    reg = Registry(url)
    assert reg.root == (tmp_path/'run'/'artifacts').resolve()
    mv = reg.register(adult_bundle, 'm', alias='champion', card=False)
    assert Path(mv.uri).parent.parent == reg.root
    assert resolve('m', url)[0].version == 1
    assert isinstance(load_model('m@1', url), AssemblyLine)
    # a folder needs no store
    assert resolve(adult_bundle) == (None, Path(adult_bundle))
    reg.store.close()


def test_unknown_references_list_what_exists(reg, adult_bundle):
    reg.register(adult_bundle, 'adult', alias='champion', card=False)
    with pytest.raises(RegistryError, match="unknown model 'nope'") as e: reg.get('nope')
    assert e.value.expected == ['adult']
    with pytest.raises(RegistryError, match='no version 9') as e: reg.load('adult@9')
    assert e.value.expected == dict(versions=[1], aliases=['champion'])
    with pytest.raises(RegistryError, match="no alias 'challenger'"): reg.resolve('adult@challenger')
    reg.register(adult_bundle, 'other', card=False)
    with pytest.raises(RegistryError, match="no alias 'champion'"): reg.load('other')   # bare name needs a champion
    with pytest.raises(RegistryError): reg.promote('adult', 5)
    with pytest.raises(ConfigError, match='invalid model name'): reg.register(adult_bundle, '../evil', card=False)
    with pytest.raises(ConfigError, match='invalid model name'): reg.register(adult_bundle, 'a b', card=False)
    with pytest.raises(ConfigError, match='AssemblyLine or a bundle folder'): reg.register(42, 'x', card=False)


# ------------------------------------------------------------------------------------------ tampering
def test_tampered_bundles_are_refused_naming_the_file(reg, adult_bundle, tmp_path):
    # a folder that is not a bundle
    (tmp_path/'plain').mkdir(); (tmp_path/'plain'/'model.skops').write_bytes(b'x')
    with pytest.raises(IntegrityError, match='no manifest.json'): load_model(tmp_path/'plain')
    with pytest.raises(IntegrityError, match='no bundle folder'): load_model(tmp_path/'missing')
    with pytest.raises(IntegrityError, match='no manifest.json'): reg.register(tmp_path/'plain', 'x', card=False)
    # a missing file
    b = _copy(adult_bundle, tmp_path, 'b1'); (b/'leaderboard.csv').unlink()
    with pytest.raises(IntegrityError, match='missing') as e: load_model(b)
    assert e.value.file == 'leaderboard.csv'
    # a modified model.skops (same size, one byte flipped)
    b = _copy(adult_bundle, tmp_path, 'b2'); raw = bytearray((b/'model.skops').read_bytes()); raw[len(raw)//2] ^= 1
    (b/'model.skops').write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match='does not match') as e: load_model(b)
    assert e.value.file == 'model.skops'
    # an extra file dropped in
    b = _copy(adult_bundle, tmp_path, 'b3'); (b/'payload.pkl').write_bytes(b'evil')
    with pytest.raises(IntegrityError, match='does not list') as e: load_model(b)
    assert e.value.file == 'payload.pkl'
    # tampering with a registered version is caught at load, naming the file
    mv = reg.register(adult_bundle, 'adult', alias='champion', card=False)
    with open(Path(mv.uri)/'schema.json', 'a') as f: f.write('\n')
    with pytest.raises(IntegrityError, match='schema.json'): reg.load('adult')
    # a consistent re-manifested bundle swapped in still fails: the registry row holds the old manifest hash
    mv2 = reg.register(adult_bundle, 'adult', card=False)
    add_files(mv2.uri, {'sneaky.txt': 'x'})
    check_bundle(mv2.uri)   # internally consistent ...
    with pytest.raises(IntegrityError, match='does not match the SHA-256 registered') as e: reg.load('adult@2')
    assert e.value.file.endswith('manifest.json')
    # a registered folder that was deleted
    mv3 = reg.register(adult_bundle, 'adult', card=False); shutil.rmtree(mv3.uri)
    with pytest.raises(IntegrityError, match='bundle folder of adult@3 is missing'): reg.load('adult@3')


def test_extra_files_hook(reg, adult_bundle, tmp_path):
    big = tmp_path/'ref.bin'; big.write_bytes(os.urandom(1000))
    mv = reg.register(adult_bundle, 'adult', card=False,
                      extra_files={'reference.json': json.dumps({'a': 1}), 'monitor/ref.bin': big, 'raw.bin': b'\x00\x01'})
    man = check_bundle(mv.uri)
    assert {'reference.json', 'monitor/ref.bin', 'raw.bin'} <= set(man['files'])
    assert json.loads((Path(mv.uri)/'reference.json').read_text()) == {'a': 1}
    assert (Path(mv.uri)/'monitor'/'ref.bin').read_bytes() == big.read_bytes()
    assert man['data_hash'] == json.loads((Path(adult_bundle)/'manifest.json').read_text())['data_hash']
    for bad in ('manifest.json', 'model.skops', '../up', '/abs', '.hidden'):
        with pytest.raises(ConfigError): reg.register(adult_bundle, 'adult', card=False, extra_files={bad: b'x'})
    with pytest.raises(ConfigError, match='bytes, text or a Path'): reg.register(adult_bundle, 'adult', card=False, extra_files={'x.txt': 3})
    assert reg.versions('adult')['version'].tolist() == [1]            # failed registrations left nothing
    assert sorted(p.name for p in (reg.root/'adult').iterdir()) == ['.lock', 'v1']


# ---------------------------------------------------------------------------------- atomic registration
_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from assembly_line.deploy import Registry
    url, root, bundle, big = sys.argv[1:5]
    Registry(url, root=root).register(bundle, 'adult', alias='champion', card=False, extra_files={'big.bin': Path(big)})
    print('done', flush=True)
""")

def _complete_versions_only(reg, name='adult'):
    "Every listed version loads; every vN folder that is not listed is invisible to lookups."
    vs = reg.versions(name)
    for v in vs.itertuples():
        assert Path(v.uri).is_dir()
        lm = reg.open(f"{name}@{v.version}")
        assert (Path(v.uri)/'big.bin').stat().st_size == BIG
        assert lm.line.predict(pd.DataFrame([_ROW])).shape == (1,)
    listed = set(vs['version'])
    for d in (reg.root/name).glob('v*'):
        n = int(d.name[1:])
        if n not in listed:
            with pytest.raises(RegistryError): reg.get(f"{name}@{n}")
    return listed

BIG = 48 * 2**20
_ROW = dict(age=39, workclass=' State-gov', fnlwgt=77516, education=' Bachelors', **{'education-num': 13},
            **{'marital-status': ' Never-married'}, occupation=' Adm-clerical', relationship=' Not-in-family', race=' White',
            sex=' Male', **{'capital-gain': 2174, 'capital-loss': 0, 'hours-per-week': 40, 'native-country': ' United-States'})

@pytest.mark.slow
def test_killed_writer_never_leaves_a_visible_partial_version(sqlite_url, tmp_path, adult_bundle):
    big = tmp_path/'big.bin'
    with open(big, 'wb') as f: f.write(os.urandom(BIG))
    root = tmp_path/'art'
    reg = Registry(sqlite_url, root=root)
    killed = []
    # 1) killed while the big file is being written into the staging folder; 2) killed as soon as the vN folder appears
    for when in ('staging', 'renamed'):
        p = subprocess.Popen([sys.executable, '-c', _WRITER, sqlite_url, str(root), str(adult_bundle), str(big)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            mdir = root/'adult'
            if when == 'staging' and any(mdir.glob('.staging-*/bundle/big.bin')): break
            if when == 'renamed' and any(mdir.glob('v*')): break
            time.sleep(0.002)
        alive = p.poll() is None
        os.kill(p.pid, signal.SIGKILL); p.wait()
        killed.append(alive)
        _complete_versions_only(reg)
    assert any(killed), "the writer finished before it could be killed: the test did not test anything"
    # after the kills, a normal registration works, cleans up the dead writers' staging folders and gets a valid version
    mv = reg.register(adult_bundle, 'adult', alias='champion', card=False, extra_files={'big.bin': big})
    listed = _complete_versions_only(reg)
    assert mv.version in listed and reg.get('adult').version == mv.version
    assert not list((root/'adult').glob('.staging-*'))
    reg.store.close()


def test_orphan_folder_without_row_is_invisible_and_moved_aside(reg, adult_bundle):
    # what a writer killed between the rename and the insert leaves behind: a complete folder, no row
    shutil.copytree(adult_bundle, reg.root/'adult'/'v1')
    assert reg.versions('adult').empty
    with pytest.raises(RegistryError): reg.get('adult@1')
    mv = reg.register(adult_bundle, 'adult', alias='champion', card=False)
    assert mv.version == 1 and reg.load('adult').predict(pd.DataFrame([_ROW])).shape == (1,)
    assert len(list((reg.root/'adult'/'.orphans').iterdir())) == 1


def test_concurrent_registrations_get_distinct_complete_versions(reg, adult_bundle):
    errs, out = [], []
    def go():
        try: out.append(reg.register(adult_bundle, 'adult', card=False).version)
        except Exception as e: errs.append(e)
    ts = [threading.Thread(target=go) for _ in range(3)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert not errs and sorted(out) == [1, 2, 3]
    assert sorted(p.name for p in (reg.root/'adult').glob('v*')) == ['v1', 'v2', 'v3']
    for v in out: check_bundle(reg.resolve(f'adult@{v}')[1])


# ------------------------------------------------------------------------------------ alias transactions
def _versions(reg, bundle, n, name='adult'):
    "Register `bundle` n times as versions 1..n of `name`, v1 the champion."
    return [reg.register(bundle, name, alias='champion' if i == 0 else None, card=False).version for i in range(n)]

def _flip_byte(path):
    raw = bytearray(Path(path).read_bytes()); raw[len(raw)//2] ^= 1; Path(path).write_bytes(bytes(raw))

def _state(reg, name='adult'):
    return reg.store.aliases(name), reg.history(name).to_dict('list'), len(reg.store.audit_log(name))

def test_refused_promote_leaves_every_alias_where_it_was(reg, adult_bundle):
    "The target bundle is verified before the alias moves: a tampered, swapped or deleted bundle is refused and nothing changes."
    _versions(reg, adult_bundle, 5)
    reg.set_alias('adult', 'challenger', 2)
    before = _state(reg)
    _flip_byte(Path(reg.get('adult@3').uri)/'model.skops')                    # one flipped byte in the model
    with pytest.raises(IntegrityError, match='does not match') as e: reg.promote('adult', 3)
    assert e.value.file == 'model.skops'
    add_files(reg.get('adult@4').uri, {'sneaky.txt': 'x'})                     # consistent, but not the registered bundle
    with pytest.raises(IntegrityError, match='SHA-256 registered'): reg.promote('adult', 4, expected=1)
    with pytest.raises(IntegrityError, match='SHA-256 registered'): reg.set_alias('adult', 'challenger', 4, expected=2)
    shutil.rmtree(reg.get('adult@5').uri)                                       # the folder is gone
    with pytest.raises(IntegrityError, match='is missing'): reg.promote('adult', 5)
    assert _state(reg) == before                                                # aliases, history and audit untouched
    # a rollback whose target fails its check is refused the same way
    assert reg.promote('adult', 2, expected=1) == 1
    with open(Path(reg.get('adult@1').uri)/'schema.json', 'a') as f: f.write('\n')
    before = _state(reg)
    with pytest.raises(IntegrityError, match='schema.json'): reg.rollback('adult')
    with pytest.raises(IntegrityError, match='schema.json'): reg.rollback('adult', to_version=1)
    assert _state(reg) == before and reg.get('adult').version == 2

def test_promote_and_rollback_compare_and_swap(reg, adult_bundle):
    "`expected=` is the champion the caller read; a stale one is a RegistryConflict that moves nothing."
    _versions(reg, adult_bundle, 3)
    assert reg.promote('adult', 2, expected=1) == 1
    n = len(reg.history('adult'))
    with pytest.raises(RegistryConflict) as e: reg.promote('adult', 3, expected=1)
    assert (e.value.model, e.value.alias, e.value.expected_version, e.value.actual_version) == ('adult', 'champion', 1, 2)
    with pytest.raises(RegistryConflict): reg.promote('adult', 3, expected=None)   # None: "no champion yet"
    with pytest.raises(RegistryConflict): reg.rollback('adult', expected=1)
    with pytest.raises(RegistryConflict): reg.rollback('adult', to_version=3, expected=3)
    assert reg.get('adult').version == 2 and len(reg.history('adult')) == n
    assert reg.rollback('adult', expected=2) == 1
    assert reg.history('adult', 'champion')['why'].iloc[-1] == 'rollback from v2'
    assert reg.promote('adult', 3) == 1                                          # no expected: unchecked, as before

PROMOTER = textwrap.dedent("""
    import sys, json
    from assembly_line.deploy import Registry
    from assembly_line.core import RegistryConflict
    url, root, v = sys.argv[1], sys.argv[2], int(sys.argv[3])
    reg = Registry(url, root=root)
    seen = reg.store.get_alias('adult', 'champion')
    print(seen, flush=True)
    sys.stdin.readline()                          # ... meanwhile another process promotes
    try: reg.promote('adult', v, expected=seen, who='late'); print(json.dumps('moved'))
    except RegistryConflict as e: print(json.dumps(e.to_dict()))
""")

def _run(script, *args, **kw):
    return subprocess.Popen([sys.executable, '-c', script, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])), **kw)

def test_a_promote_decided_on_a_stale_read_in_another_process_is_a_conflict(store_url, tmp_path, adult_bundle):
    reg = Registry(store_url, root=tmp_path/'art'); _versions(reg, adult_bundle, 3)
    p = _run(PROMOTER, store_url, reg.root, 3)
    assert p.stdout.readline().strip() == '1'                                  # it read v1 ...
    reg.promote('adult', 2, expected=1, who='first')                            # ... we promote v2 ...
    out, err = p.communicate('go\n', timeout=120)                             # ... then it tries v3 on its stale read
    assert p.returncode == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert d['error'] == 'RegistryConflict' and (d['expected_version'], d['actual_version']) == (1, 2)
    assert reg.get('adult').version == 2 and reg.history('adult', 'champion')['who'].tolist()[-1] == 'first'
    reg.store.close()

RACER = textwrap.dedent("""
    import sys, os, json, time, random
    from assembly_line.deploy import Registry
    from assembly_line.core import RegistryError, RegistryConflict
    url, root, tag, n, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    reg = Registry(url, root=root); rnd = random.Random(tag)
    out = dict(promote=0, rollback=0, conflicts=[], no_earlier=0, errors=[])
    print('ready', flush=True)
    while not os.path.exists(go): time.sleep(0.001)
    for i in range(n):
        try:
            if rnd.random() < 0.5:
                cur = reg.store.get_alias('adult', 'champion')
                to = rnd.choice([v for v in range(1, 5) if v != cur])
                reg.promote('adult', to, expected=cur, who=tag, why=f"{tag}-{i} expected v{cur}"); out['promote'] += 1
            else: reg.rollback('adult', who=tag, why=f"{tag}-{i}"); out['rollback'] += 1
        except RegistryConflict as e: out['conflicts'].append([e.expected_version, e.actual_version, 'last move' in str(e)])
        except RegistryError as e:
            if 'no earlier champion' in str(e): out['no_earlier'] += 1
            else: out['errors'].append(repr(e))
        except Exception as e: out['errors'].append(repr(e))
    print(json.dumps(out), flush=True)
""")

def _replay_rollbacks_ok(h):
    "Replay the champion history as `Registry` does: every rollback went to the champion before the one it left."
    stack = []
    for r in h.itertuples():
        v = int(r.new_version)
        if str(r.why).startswith('rollback'):
            if len(stack) < 2 or stack[-2] != v: return False
            stack.pop()
        elif not stack or stack[-1] != v: stack.append(v)
    return True

@pytest.mark.slow
def test_concurrent_promote_and_rollback_processes_keep_one_chain(store_url, tmp_path, adult_bundle):
    "Four processes promote and roll back at once: no move is lost or undone unseen, conflicts surface as RegistryConflict."
    reg = Registry(store_url, root=tmp_path/'art'); _versions(reg, adult_bundle, 4)
    go = tmp_path/'go'
    ps = [_run(RACER, store_url, reg.root, f"w{k}", 25, go) for k in range(4)]
    for p in ps: assert p.stdout.readline().strip() == 'ready', p.stderr.read()
    go.touch()
    outs = []
    for p in ps:
        o, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        outs.append(json.loads(o.strip().splitlines()[-1]))
    assert not [e for o in outs for e in o['errors']]
    h = reg.history('adult', 'champion'); moves = h.iloc[1:]
    n_promote, n_rollback = (sum(o[k] for o in outs) for k in ('promote', 'rollback'))
    assert n_rollback > 0 and n_promote > 0                                     # the race was run
    assert len(moves) == n_promote + n_rollback                                 # every acknowledged move is there, nothing else
    assert h.old_version.tolist()[1:] == h.new_version.tolist()[:-1]            # one chain
    decided = [int(w.split('rollback from v')[1].split(':')[0]) if w.startswith('rollback from v')
               else int(w.rsplit(' expected v', 1)[1]) for w in moves.why]
    assert moves.old_version.tolist() == decided                                # each move left the version its caller saw
    assert _replay_rollbacks_ok(h)
    assert all(exp != act or moved_and_back for o in outs for exp, act, moved_and_back in o['conflicts'])
    assert reg.get('adult').version == h.new_version.iloc[-1]
    reg.store.close()


# ------------------------------------------------------------------------------------------ model card
@pytest.mark.slow
def test_model_card_written_into_the_bundle(reg, adult_line, fresh):
    line, _ = adult_line
    mv = reg.register(line, 'adult', data=fresh, card=dict(factors=['sex'], limitations='Census of 1994 only.'))
    folder = Path(mv.uri)
    man = check_bundle(folder)
    assert {'model_card.md', 'model_card.html'} <= set(man['files'])
    md = (folder/'model_card.md').read_text()
    for sec in ('Model details', 'Intended use', 'Factors', 'Metrics', 'Evaluation data', 'Training data',
                'Ethical considerations', 'Caveats and recommendations'):
        assert f"\n## {sec}\n" in md
    assert md.startswith('# Model card: adult v1')
    assert line.data_hash_ in md and 'Census of 1994 only.' in md
    ci = line.holdout_ci_
    assert f"[{ci.low:.4f}, {ci.high:.4f}]" in md
    assert 'by `sex`' in md and '| Male |' in md and '| Female |' in md
    page = (folder/'model_card.html').read_text()
    assert page.startswith('<!doctype html>') and page.count("src='data:image/png;base64,") == 5


def test_model_card_html_renders_markdown_emphasis():
    "The HTML page shows **bold** as <strong>, not as asterisks; code spans stay literal (even a `**` inside one)."
    card = ModelCard('Model card: t', [CardSection('Metrics', [('p', "Model selection metric: **roc_auc** (`a**b`, 2 < 3)"),
                                                               ('list', ['**first** item'])])])
    page = card.to_html()
    assert '<strong>roc_auc</strong>' in page and '<strong>first</strong> item' in page, page
    assert '<code>a**b</code>' in page and '2 &lt; 3' in page
    assert '**roc_auc**' not in page and '**first**' not in page
    assert '**roc_auc**' in card.to_markdown()          # the Markdown keeps its own markup


def test_model_card_regression_and_bad_input(cars_line):
    line, df = cars_line
    card = model_card(line, df.dropna(subset=['Miles_per_Gallon']).head(120), name='cars', version=4)
    assert set(card.figures) == {'Leaderboard', 'Residuals'}
    assert card.title == 'Model card: cars v4' and 'rmse' in card.to_markdown()
    with pytest.raises(SchemaError, match='target column'): model_card(line, df.drop(columns='Miles_per_Gallon'))
    with pytest.raises(ConfigError, match='not a column'): model_card(line, factors=['colour'])
    with pytest.raises(DataError, match='no labelled rows'): model_card(line, df.assign(Miles_per_Gallon=np.nan))


# -------------------------------------------------------------------------------------------- batch scoring
def test_score_file_in_chunks_csv_and_parquet(adult_line, fresh, tmp_path, reg, adult_bundle):
    line, _ = adult_line
    X = fresh.drop(columns='income').rename_axis('rid').reset_index()
    X.to_csv(tmp_path/'in.csv', index=False); X.to_parquet(tmp_path/'in.parquet')
    want = line.predict_proba(X)
    reg.register(adult_bundle, 'adult', alias='champion', card=False)
    r = score_file('adult', tmp_path/'in.csv', tmp_path/'out.csv', chunksize=250, proba=True, id_cols=['rid'], registry=reg)
    assert (r.rows, r.chunks, r.model) == (600, 3, 'adult@1')
    out = pd.read_csv(tmp_path/'out.csv')
    assert list(out.columns) == ['rid', 'prediction'] + [f'proba_{c}' for c in line.classes_]
    assert out['rid'].tolist() == list(range(600))
    assert out['prediction'].tolist() == line.predict(X).tolist()
    np.testing.assert_allclose(out[[f'proba_{c}' for c in line.classes_]].to_numpy(), want.to_numpy(), atol=1e-9)
    r = score_file(line, tmp_path/'in.parquet', tmp_path/'out.parquet', chunksize=128, proba=True, id_cols='rid')
    assert (r.rows, r.chunks) == (600, 5)
    outp = pd.read_parquet(tmp_path/'out.parquet')
    pd.testing.assert_frame_equal(outp, out, check_dtype=False, atol=1e-9)
    # CSV in, Parquet out, no probabilities, an uneven last chunk
    r = score_file(str(adult_bundle), tmp_path/'in.csv', tmp_path/'out2.parquet', chunksize=70)
    assert r.chunks == 9 and pd.read_parquet(tmp_path/'out2.parquet')['prediction'].tolist() == out['prediction'].tolist()


def test_score_file_bad_input(adult_line, cars_line, fresh, tmp_path):
    line, _ = adult_line
    X = fresh.drop(columns='income')
    X.drop(columns=['age']).to_csv(tmp_path/'noage.csv', index=False)
    with pytest.raises(SchemaError, match="'age' is missing") as e: score_file(line, tmp_path/'noage.csv', tmp_path/'o.csv', chunksize=100)
    assert e.value.file.endswith('noage.csv') and 'rows 0–99' in e.value.message
    assert not list(tmp_path.glob('*o.csv*'))                              # nothing half-written
    X.to_csv(tmp_path/'in.csv', index=False)
    with pytest.raises(SchemaError, match="id column 'rid'"): score_file(line, tmp_path/'in.csv', tmp_path/'o.csv', id_cols='rid')
    with pytest.raises(ConfigError, match='unknown output file type'): score_file(line, tmp_path/'in.csv', tmp_path/'o.xlsx')
    with pytest.raises(ConfigError, match='chunksize'): score_file(line, tmp_path/'in.csv', tmp_path/'o.csv', chunksize=0)
    with pytest.raises(DataError, match='no such input file'): score_file(line, tmp_path/'nope.csv', tmp_path/'o.csv')
    (tmp_path/'empty.csv').write_text(','.join(X.columns) + '\n')
    with pytest.raises(DataError, match='no rows'): score_file(line, tmp_path/'empty.csv', tmp_path/'o.csv')
    cl, cdf = cars_line
    cdf.head(20).to_csv(tmp_path/'cars.csv', index=False)
    with pytest.raises(ConfigError, match='classification'): score_file(cl, tmp_path/'cars.csv', tmp_path/'c.csv', proba=True)
    r = score_file(cl, tmp_path/'cars.csv', tmp_path/'c.csv', chunksize=7)
    np.testing.assert_allclose(pd.read_csv(tmp_path/'c.csv')['prediction'], cl.predict(cdf.head(20)), rtol=1e-9)
    assert not list(tmp_path.glob('.*.tmp'))


def test_score_many_sequential(adult_line, adult_bundle, fresh, tmp_path):
    line, _ = adult_line
    X = fresh.drop(columns='income')
    X.iloc[:200].to_csv(tmp_path/'a.csv', index=False); X.iloc[200:].to_parquet(tmp_path/'b.parquet')
    rs = score_many(str(adult_bundle), [tmp_path/'a.csv', tmp_path/'b.parquet'], tmp_path/'out', chunksize=150)
    assert [r.rows for r in rs] == [200, 400]
    got = pd.concat([pd.read_csv(tmp_path/'out'/'a.pred.csv'), pd.read_parquet(tmp_path/'out'/'b.pred.parquet')])
    assert got['prediction'].tolist() == line.predict(X).tolist()
    (tmp_path/'c').mkdir(); X.to_csv(tmp_path/'c'/'a.csv', index=False)
    with pytest.raises(ConfigError, match='same output'): score_many(str(adult_bundle), [tmp_path/'a.csv', tmp_path/'c'/'a.csv'], tmp_path/'out')
    with pytest.raises(ConfigError, match='no files'): score_many(str(adult_bundle), [], tmp_path/'out')


@pytest.mark.dask
@pytest.mark.slow
def test_score_many_on_a_dask_local_cluster(adult_line, fresh, tmp_path, reg, adult_bundle, dask_client):
    line, _ = adult_line
    reg.register(adult_bundle, 'adult', alias='champion', card=False)
    X = fresh.drop(columns='income')
    files = []
    for i in range(4):
        f = tmp_path/f'part{i}.csv'; X.iloc[i*150:(i+1)*150].to_csv(f, index=False); files.append(f)
    client = dask_client
    rs = score_many('adult@champion', files, tmp_path/'out', client=client, registry=reg, proba=True, chunksize=100)
    workers = {w for w in client.run(lambda: os.getpid()).values()}
    assert [r.rows for r in rs] == [150]*4 and all(r.model == 'adult@1' for r in rs)
    assert len(workers) == 2 and os.getpid() not in workers
    got = pd.concat([pd.read_csv(tmp_path/'out'/f'part{i}.pred.csv') for i in range(4)], ignore_index=True)
    assert got['prediction'].tolist() == line.predict(X).tolist()
    np.testing.assert_allclose(got[f'proba_{line.classes_[1]}'], line.predict_proba(X)[line.classes_[1]], atol=1e-9)
