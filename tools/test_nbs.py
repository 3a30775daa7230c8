"""Run the notebooks' tests the way `nbdev_test` does, but each notebook in its own process group, so CI cannot hang.

`nbdev_test` runs every notebook inside a long-lived worker of one process pool. A notebook that leaves a
thread or a child process behind (a loky pool whose queue feeder is blocked, a server thread) can then keep
that worker from exiting, and the whole run waits with no output until CI's limit. Here each notebook runs in
a fresh `python` in a new session:

- the child runs nbdev's own `test_nb` (same flags, same skipping rules, same working directory), prints one
  result line and leaves with `os._exit`, so no exit hook of anything the notebook imported can block it;
- once the child is gone, whatever it started is killed with its process group;
- a notebook still running after `--timeout` seconds has its Python stacks printed (py-spy, when installed),
  is killed, and counts as failed. `--retries` reruns a notebook that *hung* (never one that failed), and
  the report says so, so a rare hang still shows in the log with its stacks.

A failing notebook's captured output is printed; passing notebooks print one timing line each.
"""
import argparse, os, shutil, signal, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHILD = r"""
import os, sys
from pathlib import Path
from nbdev.config import get_config
from nbdev.test import test_nb
cfg = get_config()
ok, secs = test_nb(Path(sys.argv[1]), skip_flags=cfg.tst_flags.split(), force_flags=sys.argv[2].split(),
                   basepath=cfg.config_path)
print(f"\n@@nb-result {int(ok)} {secs:.1f}", flush=True)
sys.stderr.flush()
os._exit(0 if ok else 1)
"""

def notebooks(path:Path, ignore_fname:str='.notest')->list:
    "The notebooks `nbdev_test --path` would test: nbglob's choice, minus folders holding `ignore_fname`."
    from nbdev.doclinks import nbglob
    files = nbglob(str(path), as_path=True)
    return [f.absolute() for f in sorted(files) if not (f.parent/ignore_fname).exists()]

def _group_pids(pgid:int)->list:
    "Pids whose process group is `pgid` (read from /proc)."
    out = []
    for d in Path('/proc').iterdir():
        if not d.name.isdigit(): continue
        try: fields = (d/'stat').read_text().rsplit(')', 1)[1].split()
        except OSError: continue
        if int(fields[2]) == pgid: out.append(int(d.name))
    return sorted(out)

def _dump_stacks(pgid:int)->str:
    "Python stacks of every process in the group, via py-spy when it is installed."
    spy = shutil.which('py-spy')
    if spy is None: return '(install py-spy to see where it hung)\n'
    parts = []
    for pid in _group_pids(pgid):
        r = subprocess.run([spy, 'dump', '--pid', str(pid)], capture_output=True, text=True, timeout=60)
        parts.append(f"--- pid {pid}\n{r.stdout}{r.stderr}")
    return '\n'.join(parts)

def _kill_group(pgid:int):
    try: os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError: pass

def run_one(nb:Path, flags:str, timeout:float, cwd:Path)->dict:
    "Test one notebook in a new session; return its status ('passed', 'failed', 'hung'), seconds and output."
    with tempfile.TemporaryFile('w+') as log:
        t0 = time.monotonic()
        p = subprocess.Popen([sys.executable, '-c', CHILD, str(nb), flags], cwd=cwd, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        try:
            p.wait(timeout=timeout); hung, stacks = False, ''
        except subprocess.TimeoutExpired:
            hung, stacks = True, _dump_stacks(p.pid)
        _kill_group(p.pid)   # the notebook's leftovers (pool workers, servers) go with it
        p.wait()
        secs = time.monotonic() - t0
        log.seek(0); out = log.read()
    ok = not hung and p.returncode == 0 and '@@nb-result 1' in out
    status = 'hung' if hung else ('passed' if ok else 'failed')
    return dict(nb=nb, status=status, secs=secs, out=out, stacks=stacks)

def main(argv=None)->int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--path', default='nbs', help='a notebook, a folder or a glob (as nbdev_test --path)')
    ap.add_argument('--flags', default='', help='space-separated test flags to run (as nbdev_test --flags)')
    ap.add_argument('--n_workers', type=int, default=2)
    ap.add_argument('--timeout', type=float, default=900., help='seconds one notebook may run')
    ap.add_argument('--retries', type=int, default=1, help='reruns of a notebook that hung (not of one that failed)')
    a = ap.parse_args(argv)
    from nbdev.config import get_config
    cfg = get_config()
    files = notebooks(Path(a.path))
    if not files: print('No files were eligible for testing'); return 0
    cwd = cfg.nbs_path if cfg.nbs_path.exists() else Path.cwd()

    def attempt(nb):
        tries = []
        for _ in range(a.retries + 1):
            r = run_one(nb, a.flags, a.timeout, cwd); tries.append(r)
            if r['status'] != 'hung': break
        return tries

    t0 = time.monotonic()
    with ThreadPoolExecutor(max(a.n_workers, 1)) as pool:
        results = list(pool.map(attempt, files))
    failed = []
    for tries in results:
        last = tries[-1]
        for r in tries:
            if r['status'] == 'hung':
                print(f"HUNG: {r['nb'].name} ran past {a.timeout:.0f} s; its stacks:\n{r['stacks']}\n"
                      f"its output:\n{r['out'][-5000:]}")
        if last['status'] != 'passed':
            failed.append(last['nb'].name)
            if last['status'] == 'failed': print(f"FAILED: {last['nb'].name}\n{last['out'][-20000:]}")
    for tries in sorted(results, key=lambda t: -t[-1]['secs']):
        r = tries[-1]; note = f" (after {len(tries)-1} hung run(s))" if len(tries) > 1 else ''
        print(f"{r['nb'].name}: {int(r['secs'])} secs {r['status']}{note}")
    print(f"{len(files)} notebooks in {time.monotonic()-t0:.0f} s")
    if failed:
        sys.stderr.write("\nnbdev Tests Failed On The Following Notebooks:\n" + '='*50 + '\n\t' + '\n\t'.join(failed) + '\n')
        return 1
    print('Success.')
    return 0

if __name__ == '__main__': sys.exit(main())
