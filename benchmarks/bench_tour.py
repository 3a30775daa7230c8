"""Benchmark of the tour (issue 21): the wall time of `assembly-line tour` with its default parameters, start to exit.

    python benchmarks/bench_tour.py [--repeats 1] [--out /tmp/bench_tour] [-p NAME VALUE ...]

Runs the command as a user would (a fresh process: interpreter, imports, the papermill kernel, the whole notebook, the
server's shutdown), each repeat into its own run folder, and prints per repeat the wall time, the seconds per stage from
the run record, what the loop decided, and the 1-minute load average before and after (the machine is shared). The
target is under 5 minutes on the project's 2-core machines. Prints a table; asserts nothing.
"""
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path
import pandas as pd

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--out', default='/tmp/bench_tour', help='folder of the run folders (replaced)')
    ap.add_argument('-p', '--param', nargs=2, action='append', default=[], metavar=('NAME', 'VALUE'), help='a tour parameter (default: none, the defaults)')
    a = ap.parse_args(argv)
    exe = shutil.which('assembly-line', path=str(Path(sys.executable).parent)) or shutil.which('assembly-line')
    if exe is None: sys.exit("the assembly-line command is not installed (pip install -e .)")
    out = Path(a.out); shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
    rows = []
    for i in range(a.repeats):
        run = out/f"tour-{i}"
        argv = [exe, 'tour', '--quiet', '--out-dir', str(run)] + [x for k, v in a.param for x in ('-p', k, v)]
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        p = subprocess.run(argv, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        load1 = os.getloadavg()[0]
        if p.returncode != 0: print(p.stdout[-2000:], p.stderr[-2000:], file=sys.stderr); sys.exit(f"repeat {i} failed")
        rec = json.loads((run/'run_record.json').read_text())
        res = rec['results']
        rows.append(dict(repeat=i, wall_s=round(wall, 1), **{f"{s['stage']} s": round(s['seconds'], 1) for s in rec['stages']},
                         decision=res.get('decision'), promoted_by=res.get('promoted_by'), **{'load avg (1 min)': f"{load0:.1f} → {load1:.1f}"}))
    print(f"command: {' '.join(['assembly-line', 'tour', '--quiet'] + [x for k, v in a.param for x in ('-p', k, v)])}; "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(pd.DataFrame(rows).to_markdown(index=False))

if __name__ == '__main__': main()
