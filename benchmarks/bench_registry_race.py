"""Concurrent promote/rollback on one registry: how many moves undo a move their caller never saw.

    python benchmarks/bench_registry_race.py [--workers 4] [--ops 40] [--url sqlite:///...]

Each worker process loops: promote a random other version (reading the champion first and, when the
registry supports it, passing it as `expected=`), or roll back. Afterwards the champion's alias history is
checked: a *lost update* is a move whose old version is not the version its caller decided on (for a
rollback: the `vN` of "rollback from vN"; for a promote: the champion it read). Prints counts, no timings.
"""
import argparse, inspect, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import sys, os, json, time, random, inspect
from assembly_line.deploy import Registry
from assembly_line.core import RegistryError
url, root, tag, n, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
reg = Registry(url, root=root); rnd = random.Random(tag)
cas = 'expected' in inspect.signature(reg.promote).parameters
out = dict(promote=0, rollback=0, refused=0, errors=[])
print('ready', flush=True)
while not os.path.exists(go): time.sleep(0.001)
for i in range(n):
    try:
        if rnd.random() < 0.5:
            cur = reg.store.get_alias('m', 'champion')
            to = rnd.choice([v for v in range(1, 5) if v != cur])
            kw = dict(expected=cur) if cas else {}
            reg.promote('m', to, who=tag, why=f"{tag}-{i} expected v{cur}", **kw); out['promote'] += 1
        else: reg.rollback('m', who=tag, why=f"{tag}-{i}"); out['rollback'] += 1
    except RegistryError as e: out['refused'] += 1      # RegistryConflict, or no earlier champion
    except Exception as e: out['errors'].append(repr(e))
print(json.dumps(out), flush=True)
"""

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--workers', type=int, default=4); ap.add_argument('--ops', type=int, default=40)
    ap.add_argument('--url', default=None)
    a = ap.parse_args()
    from assembly_line.datasets import load_example
    from assembly_line.line import AssemblyLine
    from assembly_line.deploy import Registry
    tmp = Path(tempfile.mkdtemp())
    url = a.url or f"sqlite:///{tmp/'store.sqlite'}"
    line = AssemblyLine('income', time_budget=120, include=['linear'], tune=False, ensemble=False, seed=0, deterministic=True).fit(load_example('adult', n=800))
    reg = Registry(url, root=tmp/'art')
    for i in range(4): reg.register(line, 'm', alias='champion' if i == 0 else None, card=False)
    (tmp/'w.py').write_text(WORKER); go = tmp/'go'
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ps = [subprocess.Popen([sys.executable, str(tmp/'w.py'), url, str(tmp/'art'), f"w{k}", str(a.ops), str(go)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for k in range(a.workers)]
    for p in ps: assert p.stdout.readline().strip() == 'ready', p.stderr.read()
    go.touch()
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in ps]
    h = reg.history('m', 'champion').iloc[1:]
    lost = dict(promote=0, rollback=0)
    for r in h.itertuples():
        if r.why.startswith('rollback from v'): kind, want = 'rollback', int(r.why.split('rollback from v')[1].split(':')[0])
        else: kind, want = 'promote', int(r.why.rsplit(' expected v', 1)[1])
        lost[kind] += int(want != r.old_version)
    tot = {k: sum(o[k] for o in outs) for k in ('promote', 'rollback', 'refused')}
    cas = 'expected' in inspect.signature(reg.promote).parameters
    print(f"backend={reg.store.dialect} workers={a.workers} ops/worker={a.ops} cas={cas}: moves={len(h)} "
          f"promotes={tot['promote']} rollbacks={tot['rollback']} refused={tot['refused']} "
          f"lost: rollbacks {lost['rollback']}/{tot['rollback']}, promotes {lost['promote']}/{tot['promote']}; "
          f"errors={sum(len(o['errors']) for o in outs)}")

if __name__ == '__main__': main()
