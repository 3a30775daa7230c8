"""Benchmark of the prediction service (issue 5): single-record latency and batch throughput of `assembly_line.serve`
under a real uvicorn server (subprocess, loopback, keep-alive), next to the bare model in this process on the same rows.

    python benchmarks/bench_serve.py [--rows 5000] [--singles 500] [--batches 20] [--batch-size 1000] [--bundle PATH]

Bare and service calls alternate request by request, so both see the same machine load, and the bare side runs as the
service does: one OpenMP thread, and the loaded line frozen out of the garbage collector's scans (`gc.freeze`). "bare line" is
`line.predict_proba(one_row_frame)` (cleaning + schema validation + model), "bare model" is the fitted predictor on
already-prepared rows. The service also reports the line's own time in each request (`Server-Timing: line;dur=`); the
round trip minus that is the service's overhead per request, measured without comparing two processes (the bare line
here and the same line in the server process differ by a few ms from run to run, as much as the overhead itself).
Single requests go three ways, each on its own keep-alive connection: a raw socket that sends ready-made request bytes
and reads the answer by its Content-Length (the leanest client: what is left is the service, the loopback and the
waking up), the standard library's `http.client` (~0.05 ms warm and 0.15-0.5 ms here of its own header parsing), and
httpx (0.7-1.4 ms per request of its own here). Each single request follows the client's own work on a row (a bare
`predict_proba`), as a client's requests follow the work that makes them: sent back to back, a request would also meet
the service still finishing the previous answer. Batches go through `http.client`, JSON and CSV, each alone: every
service batch follows a bare batch of the same rows (the server idles through it, and pays its waking up), and every bare
batch follows a service batch; besides the ratio of medians it prints the median of the ratios of each service batch to
the bare batch before it ("paired") and the service's throughput over its own line's (from `Server-Timing`). Sustained
throughput then sends bursts of `--burst` batches back to back (`--rounds` of each kind, the order rotating), so the
server does not idle between the batches of a burst, only between bursts, where its log writes. Saturated throughput
last: `--saturate` batches back to back after 1.5 s of the same load, so the log has a backlog as it stands under
unbroken load and ingests beside the requests, `--saturate-rounds` of each kind. Every bare measurement starts after
the service's log has ingested what it holds (`pending` polled from `/health`): on these 2 CPUs its ingest would
otherwise run beside the bare batch and slow it. (Every answered batch is appended to the log's spool before its
answer: that write is inside every service figure.)
Liveness last (`--clients`, default 50; `--liveness` runs only this part): that many clients in a child process
saturate `/predict` for `--liveness-s` seconds, each on its own keep-alive connection, back to back, half single records,
half batches of 10-1,000 rows (JSON, one in four CSV), while this process asks `/health` every 20 ms on its own connection; it prints `/health`'s
p50/p99/max and the rows/s the clients got.
Targets: service p50 overhead < 2 ms over the bare line per single request; batch throughput
>= 80% of bare; `/health` p99 < 100 ms under the 50 clients. Then it stops the server with SIGTERM, rows still pending in its prediction log, and checks that every
request id the service answered is in the store. Prints tables; asserts nothing.
"""
import os
os.environ.setdefault('OMP_NUM_THREADS', '1')          # the bare side runs as the service does: one OpenMP thread
import argparse, gc, http.client, json, socket, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def pct(xs, q): return float(np.percentile(np.asarray(xs)*1000, q))

def server_line_s(r)->float:
    "The line's own seconds in a /predict request, from its `Server-Timing: line;dur=<ms>` header."
    return float(r.headers['server-timing'].split('dur=')[1].split(',')[0])/1000

class Reply:
    "A response: status, headers (lower-case names), body."
    def __init__(self, status_code:int, headers:dict, content:bytes):
        self.status_code, self.headers, self.content = status_code, headers, content
    @classmethod
    def read(cls, r): return cls(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())   # off `http.client`
    def json(self): return json.loads(self.content)
    @property
    def text(self): return self.content.decode(errors='replace')

class RawClient:
    "HTTP/1.1 over one keep-alive socket with nothing in between: ready-made request bytes out, status, headers, body in."
    def __init__(self, port:int):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b''
    @staticmethod
    def request_bytes(path:str, body:bytes, ctype='application/json')->bytes:
        return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
                .encode() + body)
    def send(self, req:bytes)->Reply:
        self.sock.sendall(req)
        while b'\r\n\r\n' not in self.buf: self._more()
        head, self.buf = self.buf.split(b'\r\n\r\n', 1)
        lines = head.decode('latin-1').split('\r\n')
        hdrs = dict((k.strip().lower(), v.strip()) for k, _, v in (l.partition(':') for l in lines[1:]))
        n = int(hdrs['content-length'])
        while len(self.buf) < n: self._more()
        r, self.buf = Reply(int(lines[0].split()[1]), hdrs, self.buf[:n]), self.buf[n:]
        return r
    def _more(self):
        d = self.sock.recv(65536)
        if not d: raise ConnectionError("the server closed the connection")
        self.buf += d

def _load_clients(port:int, bodies:list, n:int, seconds:float, out):
    "`n` threads, each on its own keep-alive connection, send `bodies` (cycled) to /predict back to back for `seconds`; puts (requests, rows, errors)."
    import threading
    stop, counts = time.monotonic() + seconds, []
    def client(k):
        rc, reqs, rows, errs = RawClient(port), 0, 0, 0
        for i in range(k, 10**9):
            if time.monotonic() > stop: break
            b, m, ct = bodies[i % len(bodies)]
            r = rc.send(RawClient.request_bytes('/predict', b, ct))
            reqs += 1; rows += m if r.status_code == 200 else 0; errs += r.status_code != 200
        counts.append((reqs, rows, errs))
    ts = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    out.put(tuple(map(sum, zip(*counts))))

def liveness(port:int, recs:list, clients:int, seconds:float)->dict:
    "`/health` latencies (s) while `clients` in a child process saturate /predict (see the module's docstring)."
    import multiprocessing as mp, random
    rnd = random.Random(0)
    bodies = []
    for k in range(64):
        m = 1 if k % 2 == 0 else rnd.choice([10, 50, 100, 200, 1000, 1000])
        lo = rnd.randrange(0, len(recs) - m)
        if k % 8 == 7: bodies.append((pd.DataFrame(recs[lo:lo+m]).to_csv(index=False).encode(), m, 'text/csv'))
        else: bodies.append((json.dumps(recs[lo] if m == 1 else recs[lo:lo+m]).encode(), m, 'application/json'))
    ctx = mp.get_context('spawn'); q = ctx.Queue()
    p = ctx.Process(target=_load_clients, args=(port, bodies, clients, seconds, q)); p.start()
    time.sleep(min(2., seconds/4))                  # the clients connect and the load settles
    h, lat, end = Client(port), [], time.monotonic() + seconds - min(2., seconds/4) - 0.5
    while time.monotonic() < end:
        t = time.perf_counter(); r = h.get('/health'); lat.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
        time.sleep(0.02)
    reqs, rows, errs = q.get(timeout=seconds + 120); p.join(60)
    return dict(health=lat, requests=reqs, rows=rows, errors=errs, seconds=seconds, clients=clients)

def print_liveness(lv:dict):
    lat = lv['health']
    print(f"\nliveness: {lv['clients']} clients saturating /predict for {lv['seconds']:.0f} s ({lv['requests']} requests, "
          f"{lv['rows']/lv['seconds']:.0f} rows/s, {lv['errors']} errors); GET /health x{len(lat)}: p50 {pct(lat, 50):.1f} ms, "
          f"p99 {pct(lat, 99):.1f} ms, max {max(lat)*1000:.1f} ms; load average {tuple(round(x, 2) for x in os.getloadavg())}")

class Client:
    "One keep-alive HTTP/1.1 connection through `http.client`: what the benchmark's requests go through."
    def __init__(self, port:int): self.conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    def request(self, method, path, body=None, headers=None)->Reply:
        self.conn.request(method, path, body=body, headers=headers or {})
        return Reply.read(self.conn.getresponse())
    def get(self, path): return self.request('GET', path)
    def post(self, path, content:bytes, headers=None): return self.request('POST', path, content, headers)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rows', type=int, default=5000, help='adult rows to fit on')
    ap.add_argument('--singles', type=int, default=500, help='single-record requests')
    ap.add_argument('--batches', type=int, default=20, help='batch requests (each JSON and CSV)')
    ap.add_argument('--batch-size', type=int, default=1000)
    ap.add_argument('--burst', type=int, default=4, help='batches per back-to-back burst (sustained throughput)')
    ap.add_argument('--rounds', type=int, default=9, help='bursts of each kind (sustained throughput; the order rotates every 3)')
    ap.add_argument('--saturate', type=int, default=40, help='batches per saturated segment (after 1.5 s of the same load)')
    ap.add_argument('--saturate-rounds', type=int, default=3, help='saturated segments of each kind')
    ap.add_argument('--bundle', help='reuse a saved bundle (else fit a HistGradientBoosting line on adult)')
    ap.add_argument('--data', help='a CSV of adult rows to predict (else load_example)')
    ap.add_argument('--no-log', action='store_true', help='serve without the prediction log')
    ap.add_argument('--clients', type=int, default=50, help='clients saturating /predict while /health is timed')
    ap.add_argument('--liveness-s', type=float, default=20., help='seconds of that load')
    ap.add_argument('--liveness', action='store_true', help='only the liveness part')
    a = ap.parse_args()
    load0 = os.getloadavg()
    warnings.filterwarnings('ignore')
    import httpx
    from threadpoolctl import threadpool_limits
    from assembly_line.line import AssemblyLine
    from assembly_line.datasets import load_example
    threadpool_limits(1)
    tmp = Path(tempfile.mkdtemp(prefix='bench-serve-'))
    if a.bundle: bundle = Path(a.bundle)
    else:
        t = time.time()
        line = AssemblyLine('income', time_budget=180, include=['hist_gb'], tune=False, ensemble=False, seed=0)
        line.fit(load_example('adult', n=a.rows, seed=0))
        bundle = line.save(tmp/'adult_hgb')
        print(f"fitted {line.best_} on {a.rows} adult rows in {time.time()-t:.1f} s -> {bundle}")
    line = AssemblyLine.load(bundle)
    need = a.singles + 20 + max(a.batches, a.burst)*a.batch_size
    test = pd.read_csv(a.data) if a.data else load_example('adult', n=need, seed=1)
    test = test.drop(columns='income', errors='ignore').iloc[:need].reset_index(drop=True)
    if len(test) < need:      # short batches would skew the rows/s figures and the expected log count
        raise SystemExit(f"--data holds {len(test)} rows; {a.singles} singles + 20 warm-up + {a.batches} batches of "
                         f"{a.batch_size} need {need}")
    recs = json.loads(test.to_json(orient='records'))
    gc.collect(); gc.freeze()            # the bare side runs as `serve` does: loaded line frozen out of the GC's scans

    port, url = free_port(), f"sqlite:///{tmp/'store.sqlite'}"
    code = (f"from assembly_line.serve import serve; serve({str(bundle)!r}, port={port}, store_url={url!r}, "
            f"log={not a.no_log!r})")
    env = dict(os.environ, OMP_NUM_THREADS='1')
    srv = subprocess.Popen([sys.executable, '-c', code], env=env)
    try:
        c, hx = Client(port), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        t0 = time.time()
        while True:
            try:
                if c.get('/health').status_code == 200: break
            except (OSError, http.client.HTTPException): c = Client(port)
            if srv.poll() is not None or time.time()-t0 > 120: raise SystemExit("the server did not start")
            time.sleep(0.1)
        if a.liveness:
            print_liveness(liveness(port, recs, a.clients, a.liveness_s))
            return
        answered = []                                   # every request id the service returned
        def timed(send):
            """(reply, seconds of the round trip alone) of `send()`, which sends a ready-made body. The client's own encoding
            of the body and decoding of the answer stay outside the timing, as for the bare side, which gets its frame ready-made."""
            t = time.perf_counter(); r = send(); t = time.perf_counter()-t
            assert r.status_code == 200, r.text
            answered.extend(r.json()['request_ids'])
            return r, t
        def post(path, body:bytes, ctype='application/json', client=c):
            return timed(lambda: client.post(path, content=body, headers={'Content-Type': ctype}))
        def drained(timeout=30.):
            "Wait until the service's log holds nothing unwritten, so that no write of it runs beside a bare measurement."
            end = time.time() + timeout
            while ((c.get('/health').json().get('logging') or {}).get('pending') or 0) and time.time() < end: time.sleep(0.005)
        raw = RawClient(port)
        def post_raw(req:bytes): return timed(lambda: raw.send(req))
        one = [json.dumps(r).encode() for r in recs[:a.singles + 20]]
        one_raw = [RawClient.request_bytes('/predict?proba=true', b) for b in one]
        # warm up both sides
        for i in range(20):
            post('/predict', one[i]); post('/predict', one[i], client=hx); post_raw(one_raw[i]); line.predict_proba(test.iloc[[i]])
        bare, model, svc, inside, via_hc, via_hx = [], [], [], [], [], []
        for i in range(a.singles):
            row = test.iloc[[i]]
            # each request follows the client's own work on a row, as a client's requests follow the work that makes them;
            # requests sent back to back would also meet the service still finishing the previous answer
            t = time.perf_counter(); line.predict_proba(row); bare.append(time.perf_counter()-t)
            r, t = post_raw(one_raw[i]); svc.append(t); inside.append(server_line_s(r))
            X = line.prepare(row)
            t = time.perf_counter(); line.model_.predict_scores(X); model.append(time.perf_counter()-t)
            r, t = post('/predict?proba=true', one[i]); via_hc.append(t - server_line_s(r))
            line.predict_proba(row)
            r, t = post('/predict?proba=true', one[i], client=hx); via_hx.append(t - server_line_s(r))
        bbj, bbc, bs, bc, bsi, bci = [], [], [], [], [], []         # bbj/bbc: the bare batches before the JSON/CSV ones
        for k in range(a.batches):
            lo = a.singles + k*a.batch_size
            df = test.iloc[lo:lo+a.batch_size]
            body, csv = json.dumps({'records': recs[lo:lo+a.batch_size]}).encode(), df.to_csv(index=False).encode()
            for bare_k, path, payload, ctype, rts, ins in ((bbj, '/predict?proba=true', body, 'application/json', bs, bsi),
                                                           (bbc, '/predict', csv, 'text/csv', bc, bci)):
                # bare, then the service: each service batch meets a server that has idled through the bare one, and each
                # bare batch follows a service batch, so neither side runs right after itself (warm) while the other does not
                drained(); t = time.perf_counter(); line.predict_proba(df); bare_k.append(time.perf_counter()-t)
                r, t = post(path, payload, ctype); rts.append(t); ins.append(server_line_s(r))
        bb = bbj + bbc
        # Sustained throughput: bursts of `--burst` batches sent back to back, so neither side idles between batches.
        # The batches above stand alone: each meets a server that has idled through the client's bare batch, and pays
        # its waking up (see bench_wakeup.py). Service time = the sum of a burst's round trips (the client's decoding
        # of each answer, ~1 ms, stays out, as above); bare time = the burst's wall time. The order rotates by round.
        burst = []
        for k in range(a.burst):
            lo = a.singles + k*a.batch_size
            burst.append((test.iloc[lo:lo+a.batch_size], json.dumps({'records': recs[lo:lo+a.batch_size]}).encode(),
                          test.iloc[lo:lo+a.batch_size].to_csv(index=False).encode()))
        sus = {'bare': [], 'json': [], 'csv': []}
        for k in range(a.rounds):
            for what in (['bare', 'json', 'csv'][k % 3:] + ['bare', 'json', 'csv'][:k % 3]):
                if what == 'bare':
                    drained(); t = time.perf_counter()
                    for df, _, _ in burst: line.predict_proba(df)
                    sus[what].append(time.perf_counter()-t)
                elif what == 'json': sus[what].append(sum(post('/predict?proba=true', b)[1] for _, b, _ in burst))
                else: sus[what].append(sum(post('/predict', cs, 'text/csv')[1] for _, _, cs in burst))
        # Saturated: no idle moment at all, so the log writes beside the requests; per-batch seconds, after a warm-up
        sat = {'bare': [], 'json': [], 'csv': []}
        send = {'json': lambda b: post('/predict?proba=true', b[1])[1], 'csv': lambda b: post('/predict', b[2], 'text/csv')[1]}
        for k in range(a.saturate_rounds):
            for what in (['bare', 'json', 'csv'][k % 3:] + ['bare', 'json', 'csv'][:k % 3]):
                if what == 'bare':
                    drained(); t = time.perf_counter()
                    for i in range(a.saturate): line.predict_proba(burst[i % a.burst][0])
                    sat[what].append((time.perf_counter()-t)/a.saturate)
                else:
                    t = time.perf_counter()
                    while time.perf_counter()-t < 1.5: send[what](burst[0])
                    sat[what].append(sum(send[what](burst[i % a.burst]) for i in range(a.saturate))/a.saturate)
        h = c.get('/health').json()
        lv = liveness(port, recs, a.clients, a.liveness_s) if a.clients else None
    finally:
        srv.terminate(); rc = srv.wait(60)              # SIGTERM: uvicorn's graceful stop, then the log is written
    from assembly_line.store import Store
    logged = set(Store(url).get_predictions()['request_id']) if not a.no_log else set()
    n = a.batch_size
    rate = lambda ts: n/np.median(ts)
    tab = pd.DataFrame([
        dict(what='single: bare model (prepared row)', p50_ms=pct(model, 50), p99_ms=pct(model, 99)),
        dict(what='single: bare line.predict_proba', p50_ms=pct(bare, 50), p99_ms=pct(bare, 99)),
        dict(what='single: service POST /predict (raw socket)', p50_ms=pct(svc, 50), p99_ms=pct(svc, 99)),
        dict(what='single: service overhead over bare line', p50_ms=pct(svc, 50)-pct(bare, 50), p99_ms=pct(svc, 99)-pct(bare, 99)),
        dict(what='single: paired overhead (median of svc_i - bare_i)', p50_ms=float(np.median(np.subtract(svc, bare))*1000),
             p99_ms=float('nan')),
        dict(what='single: line time inside the service (Server-Timing)', p50_ms=pct(inside, 50), p99_ms=pct(inside, 99)),
        dict(what='single: service overhead per request (round trip - Server-Timing)', p50_ms=pct(np.subtract(svc, inside), 50),
             p99_ms=pct(np.subtract(svc, inside), 99)),
        dict(what='single: the same through http.client (its client work included)', p50_ms=pct(via_hc, 50), p99_ms=pct(via_hc, 99)),
        dict(what='single: the same through httpx (its client work included)', p50_ms=pct(via_hx, 50), p99_ms=pct(via_hx, 99)),
    ])
    print(f"\nload average (1/5/15 min) at the start {tuple(round(x, 2) for x in load0)}, at the end "
          f"{tuple(round(x, 2) for x in os.getloadavg())} on {os.cpu_count()} CPUs; {a.singles} singles, "
          f"{a.batches} batches of {n}; prediction log {'off' if a.no_log else 'on'}\n")
    print(tab.to_string(index=False, float_format=lambda v: f"{v:8.2f}"))
    bt = pd.DataFrame([dict(what='batch: bare line.predict_proba', rows_per_s=rate(bb), share_of_bare=1.),
                       dict(what='batch: service JSON records', rows_per_s=rate(bs), share_of_bare=rate(bs)/rate(bb)),
                       dict(what='batch: service CSV', rows_per_s=rate(bc), share_of_bare=rate(bc)/rate(bb)),
                       dict(what='batch: the line inside the service, JSON (Server-Timing)', rows_per_s=rate(bsi),
                            share_of_bare=rate(bsi)/rate(bb)),
                       dict(what='batch: the line inside the service, CSV (Server-Timing)', rows_per_s=rate(bci),
                            share_of_bare=rate(bci)/rate(bb)),
                       dict(what='batch: paired share, JSON (median of bare_k / service_k, bare just before)', rows_per_s=float('nan'),
                            share_of_bare=float(np.median(np.divide(bbj, bs)))),
                       dict(what='batch: paired share, CSV (median of bare_k / service_k, bare just before)', rows_per_s=float('nan'),
                            share_of_bare=float(np.median(np.divide(bbc, bc)))),
                       dict(what='batch: service JSON / its own line (overhead share)', rows_per_s=float('nan'),
                            share_of_bare=float(np.median(np.divide(bsi, bs)))),
                       dict(what='batch: service CSV / its own line (overhead share)', rows_per_s=float('nan'),
                            share_of_bare=float(np.median(np.divide(bci, bc))))])
    print(); print(bt.to_string(index=False, float_format=lambda v: f"{v:10.2f}"))
    srate = lambda ts: a.burst*n/np.median(ts)
    st = pd.DataFrame([dict(what=f'sustained ({a.burst} back to back): bare line.predict_proba', rows_per_s=srate(sus['bare']), share_of_bare=1.),
                       dict(what='sustained: service JSON records', rows_per_s=srate(sus['json']), share_of_bare=srate(sus['json'])/srate(sus['bare'])),
                       dict(what='sustained: service CSV', rows_per_s=srate(sus['csv']), share_of_bare=srate(sus['csv'])/srate(sus['bare'])),
                       dict(what='sustained: paired share, JSON (median of bare_k / service_k)', rows_per_s=float('nan'),
                            share_of_bare=float(np.median(np.divide(sus['bare'], sus['json'])))),
                       dict(what='sustained: paired share, CSV (median of bare_k / service_k)', rows_per_s=float('nan'),
                            share_of_bare=float(np.median(np.divide(sus['bare'], sus['csv']))))])
    print(); print(st.to_string(index=False, float_format=lambda v: f"{v:10.2f}"))
    sr = lambda ts: n/np.median(ts)
    sa = pd.DataFrame([dict(what=f'saturated ({a.saturate} back to back after 1.5 s): bare line.predict_proba', rows_per_s=sr(sat['bare']), share_of_bare=1.),
                       dict(what='saturated: service JSON records', rows_per_s=sr(sat['json']), share_of_bare=sr(sat['json'])/sr(sat['bare'])),
                       dict(what='saturated: service CSV', rows_per_s=sr(sat['csv']), share_of_bare=sr(sat['csv'])/sr(sat['bare']))])
    print(); print(sa.to_string(index=False, float_format=lambda v: f"{v:10.2f}"))
    if lv: print_liveness(lv)
    expect = set() if a.no_log else set(answered)
    lg = h['logging'] or {}
    print(f"\nprediction log after SIGTERM (server exit status {rc}): {len(logged & expect)} of {len(expect)} answered "
          f"predictions logged -> all logged: {not expect - logged} ({len(expect - logged)} missing, "
          f"{len(logged - expect)} others, the liveness clients' included); the log at the last /health: "
          f"{ {k: lg[k] for k in ('pending', 'ingested', 'written', 'skipped', 'dropped', 'segments', 'last_error') if k in lg} }")

if __name__ == '__main__': main()
