"""Shared pytest fixtures for assembly_line's tests.

Database fixtures
-----------------
- `pg_server` (session): a real PostgreSQL server started for the test session (initdb into a temp dir,
  started on a free loopback port, stopped at the end). Skips with a visible reason when none can start.
- `pg_url` (function): the URL of a fresh, empty database on that server.
- `sqlite_url` (function): the URL of a fresh SQLite file in `tmp_path`.
- `store_url` (function, parametrized `sqlite` / `postgres`): use it to run a test against both backends.
"""
from __future__ import annotations
import os, pwd, glob, shutil, socket, subprocess, tempfile, time, uuid
from pathlib import Path
import pytest


# ---------------------------------------------------------------- PostgreSQL server

def _pg_bin(name: str) -> str | None:
    "Path of a PostgreSQL server binary: on PATH, else the newest /usr/lib/postgresql/*/bin."
    found = shutil.which(name)
    if found: return found
    major = lambda p: int(Path(p).parents[1].name) if Path(p).parents[1].name.isdigit() else 0
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=major)
    return cands[-1] if cands else None

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def _server_user() -> str | None:
    "The OS user to run the server as: ourselves unless root (initdb refuses root); then `postgres`, created if need be."
    if os.geteuid() != 0: return None
    for name in ('postgres', 'assembly_line_pg'):
        try: pwd.getpwnam(name); return name
        except KeyError: pass
    r = subprocess.run(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'assembly_line_pg'],
                       capture_output=True, text=True)
    if r.returncode != 0: raise RuntimeError(f"running as root and could not create a server user: {r.stderr.strip()}")
    return 'assembly_line_pg'

class PostgresServer:
    "A throwaway PostgreSQL cluster: initdb into a temp dir, start on a free loopback port, stop and remove at the end."
    def __init__(self):
        self.initdb, self.pg_ctl = _pg_bin('initdb'), _pg_bin('pg_ctl')
        if not (self.initdb and self.pg_ctl): raise RuntimeError("initdb/pg_ctl not found (install Debian's `postgresql`)")
        self.user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix='al-pg-'))
        self.data, self.sock, self.log = self.root/'data', self.root/'sock', self.root/'server.log'
        self.sock.mkdir()
        if self.user:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, self.user); shutil.chown(self.sock, self.user)
        self.port, self.role = _free_port(), 'assembly_line'

    def _run(self, *cmd, timeout=60):
        cmd = list(cmd)
        if self.user: cmd = ['runuser', '-u', self.user, '--'] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ''
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-1500:]}\n{log}")
        return r

    def start(self):
        self._run(self.initdb, '-D', str(self.data), '-U', self.role, '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions')
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        self._run(self.pg_ctl, '-D', str(self.data), '-l', str(self.log), '-o', opts, '-w', '-t', '60', 'start', timeout=90)
        return self

    def stop(self):
        try: self._run(self.pg_ctl, '-D', str(self.data), '-m', 'immediate', '-w', 'stop', timeout=60)
        except Exception: pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = 'postgres') -> str:
        return f"postgresql+psycopg://{self.role}@127.0.0.1:{self.port}/{db}"

    def create_database(self, prefix: str = 'test') -> str:
        "Create a fresh empty database and return its URL."
        import psycopg
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(host='127.0.0.1', port=self.port, user=self.role, dbname='postgres', autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

@pytest.fixture(scope='session')
def pg_server():
    "A real PostgreSQL server for the whole session (skipped with the reason when none can start)."
    try: import psycopg  # noqa: F401
    except ImportError: pytest.skip("PostgreSQL tests need the psycopg driver: pip install 'psycopg[binary]'")
    try: srv = PostgresServer().start()
    except Exception as e:
        pytest.skip(f"no PostgreSQL server could start here: {str(e).strip()[:500]}")
    yield srv
    srv.stop()

@pytest.fixture
def pg_url(pg_server):
    "URL of a fresh, empty database on the session's PostgreSQL server."
    return pg_server.create_database()

@pytest.fixture
def sqlite_url(tmp_path):
    "URL of a fresh SQLite file."
    return f"sqlite:///{tmp_path/'store.sqlite'}"

@pytest.fixture(params=['sqlite', pytest.param('postgres', marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    "A fresh, empty database URL, once on SQLite and once on PostgreSQL."
    if request.param == 'sqlite': return f"sqlite:///{tmp_path/'store.sqlite'}"
    return request.getfixturevalue('pg_server').create_database()


# --- fitted lines shared by the deploy / serve / monitor / feedback / cli tests -------------------------------

def _fit_line(name, target, n, seed=0, **kw):
    from threadpoolctl import threadpool_limits
    from assembly_line.datasets import load_example
    from assembly_line.line import AssemblyLine
    df = load_example(name, n=n, seed=seed)
    with threadpool_limits(1):
        # deterministic: the fixture never depends on how busy the machine is (no clock-driven choices)
        line = AssemblyLine(target, time_budget=kw.pop('time_budget', 20), seed=seed, include=['linear', 'hist_gb'],
                            tune=False, deterministic=True, n_jobs=1, **kw).fit(df)
    return line, df

@pytest.fixture(scope='session')
def adult_line():
    "A small AssemblyLine fitted on 3,000 adult rows (binary), and the raw rows it was fitted on."
    return _fit_line('adult', 'income', 3000)

@pytest.fixture(scope='session')
def adult_bundle(adult_line, tmp_path_factory):
    "The adult line saved as a bundle folder (read-only use: copy it before tampering)."
    return adult_line[0].save(tmp_path_factory.mktemp('bundles')/'adult')

@pytest.fixture(scope='session')
def cars_line():
    "A small AssemblyLine fitted on the auto-MPG cars (regression), and its raw rows."
    return _fit_line('cars', 'Miles_per_Gallon', None)


@pytest.fixture(autouse=True, scope='session')
def _isolated_home(tmp_path_factory):
    "Runs, the default store and the registry of every test live in a temporary folder, never in the user's runs/."
    home = tmp_path_factory.mktemp('home')
    old = {k: os.environ.get(k) for k in ('ASSEMBLY_LINE_HOME', 'ASSEMBLY_LINE_STORE_URL')}
    os.environ['ASSEMBLY_LINE_HOME'] = str(home)
    os.environ.pop('ASSEMBLY_LINE_STORE_URL', None)
    yield home
    for k, v in old.items():
        if v is None: os.environ.pop(k, None)
        else: os.environ[k] = v


# --- a Dask cluster --------------------------------------------------------------------------------------------

ONE_THREAD = {v: '1' for v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')}

@pytest.fixture(scope='module')
def dask_client():
    """A `Client` on a fresh LocalCluster of two worker processes, one thread each, per test module.

    One thread for OpenMP and BLAS in the workers too (`ONE_THREAD`): they would otherwise inherit the test run's
    OMP_NUM_THREADS, and two workers each spinning two OpenMP threads on two busy cores fit a small boosting model
    ten times slower than one thread does."""
    distributed = pytest.importorskip('distributed')
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env=ONE_THREAD) as cluster, distributed.Client(cluster) as client:
        yield client
