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
