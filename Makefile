# Two commands do everything on a fresh machine:
#   make demo   set up .venv and train ESMM and MMoE on the bundled Ali-CCP sample
#   make test   set up .venv and run the whole test suite (unit tests + notebooks)
#
# PyTorch is installed first and on its own: a bare `torch` requirement pulls a CUDA build of
# several GB. TORCH_SPEC names the build to install; on machines where PyPI's torch is a CUDA
# build, point pip at the CPU wheels, e.g.
#   make demo TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"

VENV ?= .venv
# the interpreter that creates the venv (Python >= 3.10), and the venv's own
ifeq ($(OS),Windows_NT)
PYTHON ?= python
PY := $(VENV)/Scripts/python.exe
else
PYTHON ?= python3
PY := $(VENV)/bin/python
endif
STAMP := $(VENV)/.installed
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
DATA ?= data/ali-ccp
PYTEST_ARGS ?=
# test processes (pytest-xdist); each notebook runs in one of them, its cells in order.
# TEST_WORKERS=0 runs the suite in this one process
TEST_WORKERS ?= 2

.PHONY: setup demo test notebooks student bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@# macOS' python3 can be Apple's 3.9: say so, rather than fail later inside pip
	@test -x $(PY) || $(PYTHON) -c "import sys; sys.exit(sys.version_info < (3, 10))" || { \
		echo "rechub_mini needs Python >= 3.10; PYTHON=$(PYTHON) is not one. Name a newer" \
		     "one, e.g. make demo PYTHON=python3.12" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	@# build matplotlib's font cache now: its one-time notice on stderr would break nbval
	$(PY) -c "import matplotlib.pyplot" 2>/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rechub_mini train --model esmm --data $(DATA)
	$(PY) -m rechub_mini train --model mmoe --data $(DATA)

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tutorials/sanitize.cfg

test: $(STAMP)
	RECHUB_MINI_PROGRESS=0 $(PY) -m pytest $(NBVAL) -n $(TEST_WORKERS) tests tutorials/en tutorials/zh $(PYTEST_ARGS)

notebooks: $(STAMP)
	RECHUB_MINI_PROGRESS=0 $(PY) tutorials/build_notebooks.py $(LESSONS)

student: $(STAMP)
	$(PY) tutorials/make_student.py $(if $(FORCE),--force)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
