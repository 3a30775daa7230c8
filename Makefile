# Two commands on a fresh machine (each creates or reuses .venv and installs what it needs):
#   make line   -- the whole line on a bundled real data set, with the embedded defaults
#   make test   -- every test: notebooks in sync and clean, nbdev_test, the docs site builds, pytest
.PHONY: line tour test test-fast lab export docs clean-nbs bench wheel

line:
	bash tools/bootstrap.sh
	.venv/bin/assembly-line run line -p example wa_churn -p time_budget 60 -p deterministic False -p n_jobs -1

tour:   # a model's whole life in one run (train, serve, replay traffic, monitor, retrain, promote, roll back) and its pages
	bash tools/bootstrap.sh
	.venv/bin/assembly-line tour

test:
	bash tools/test.sh

test-fast:
	FAST=1 bash tools/test.sh -x -q -m "not slow"

lab:
	bash tools/bootstrap.sh
	.venv/bin/jupyter lab nbs/ $(if $(filter 0,$(shell id -u)),--allow-root,)

export:
	.venv/bin/nbdev_export && .venv/bin/nbdev_clean

docs:   # the static documentation site (README and every notebook, unexecuted) into _site/; open _site/index.html
	bash tools/bootstrap.sh
	bash tools/docs.sh
