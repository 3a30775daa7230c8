"Helpers shared by the tests that run the web app under a real uvicorn server."
import contextlib, socket, threading, time

def free_port()->int:
    "A free TCP port on the loopback interface."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@contextlib.contextmanager
def running(app, timeout:float=60):
    "Run `app` under a real uvicorn server in a thread; yield an httpx client; stop it (lifespan shutdown included)."
    import uvicorn, httpx
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=port, log_level='warning', lifespan='on'))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    t0 = time.time()
    while not server.started:
        if not th.is_alive() or time.time() - t0 > 30: raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout) as c: yield c
    finally:
        server.should_exit = True
        th.join(60)

@contextlib.contextmanager
def serving_process(model_ref, store:str, timeout:float=90, **serve_kw):
    """Run `assembly_line.serve.serve` in a subprocess on a free loopback port (SIGTERM/SIGINT reach the real uvicorn
    signal handling); yield `(process, base_url)` once `/health` answers 200; kill it at exit if it still runs.
    `store` is the store URL; `busy_timeout` in `serve_kw` opens it with that SQLite lock wait."""
    import os, subprocess, sys, httpx
    port = free_port()
    busy = serve_kw.pop('busy_timeout', None)
    st = f"Store({store!r}, busy_timeout={busy!r})" if busy is not None else repr(store)
    code = ("from assembly_line.store import Store; from assembly_line.serve import serve; "
            f"serve({str(model_ref)!r}, port={port}, store_url={st}, **{serve_kw!r})")
    proc = subprocess.Popen([sys.executable, '-c', code], env=dict(os.environ, OMP_NUM_THREADS='1'))
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200: break
            except httpx.TransportError: pass
            if proc.poll() is not None: raise RuntimeError(f"the server exited with {proc.returncode} before answering")
            if time.time() - t0 > timeout: raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill(); proc.wait(30)
