# Two commands a newcomer needs: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
WEIGHTS ?= imagenet
STEPS  ?= 200
CONTENT ?= nstkit/media/samples/content/astronaut.jpg
STYLE  ?= nstkit/media/samples/style/hexagons.png
# Both ends of the TensorFlow range CI tests (nstkit/support.py): .venv gets the newest, .venv-oldest-tf
# the oldest with the oldest Keras pyproject.toml allows (TF 2.16 wheels need numpy < 2).
NEWEST_TF := "tensorflow==2.21.*"
OLDEST_TF := "tensorflow==2.16.2" "keras==3.0.0" "numpy<2"
OLD_VENV  := .venv-oldest-tf
# pyproject.toml's build backend, installed too: the offline set-up test builds nstkit without build isolation.
BUILD_BACKEND := "setuptools>=77" wheel

MODE   ?= full

.PHONY: env demo test test-wheel test-oldest-tf lab showcase bench clean

env: $(VENV)/.installed

# A venv ($(1)) with nstkit editable, its test tools and $(2). uv installs what pip would, several times faster
# (TensorFlow and the test tools into a fresh venv: 13 s against pip's 89 s on the 2-core CI machine); pip stays
# in the venv (scripts/check_wheel.py builds the wheel with it) and installs everything where uv cannot be had.
define make_venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet uv 2>&1 | grep -v "Location '" || true
	$(1)/bin/uv pip install --quiet --python $(1)/bin/python --upgrade pip -e ".[test]" $(2) $(BUILD_BACKEND) || \
	    $(1)/bin/pip install --quiet --upgrade pip -e ".[test]" $(2) $(BUILD_BACKEND) 2>&1 | grep -v "Location '" || true
	$(1)/bin/python -c "import nstkit, tensorflow, pytest, nbval"
	touch $(1)/.installed
endef

$(VENV)/.installed: pyproject.toml
	$(call make_venv,$(VENV),$(NEWEST_TF))

$(OLD_VENV)/.installed: pyproject.toml
	$(call make_venv,$(OLD_VENV),$(OLDEST_TF))

demo: env
	mkdir -p out
	$(BIN)/nstkit stylize $(CONTENT) $(STYLE) -o out/demo.png --weights $(WEIGHTS) --steps $(STEPS)

# Two workers (pytest-xdist), each test module and notebook whole on one of them (--dist loadscope): on the
# 2-core CI machine the suite took 14 min this way and about 24 min in one process (much of a test is
# single-threaded Python: tracing, subprocess start-up). --durations keeps the slowest in CI's log.
PYTEST_PARALLEL := -n 2 --dist loadscope --durations=25

# NSTKIT_PROGRESS=0: no progress bars in the notebooks' checked cells (their outputs are compared).
test: env
	NSTKIT_PROGRESS=0 TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest $(PYTEST_PARALLEL) --nbval-lax tests notebooks

# The package as pip installs it: a wheel built from this checkout, installed non-editable in a fresh environment,
# every module imported and `nstkit stylize` run from a folder outside the checkout (scripts/check_wheel.py).
test-wheel: env
	$(BIN)/python scripts/check_wheel.py

# The oldest supported TensorFlow: what can differ there. Keras builds, loads and folds the network (network/);
# Adam, scipy's L-BFGS-B and the Fourier parameterisation are TF variables and ops inside tf.function
# (optim/test_optimizers, optim/test_param); the in-graph L-BFGS on a known minimum, its two-loop recursion, the
# default run (`auto` takes it) and its resume to the same bytes (LBFGS_ON_OLD_TF); the run engine compiles,
# checkpoints and resumes (run/test_loop, run/test_checkpoint); the memory estimate reads TF's allocator;
# notebook 01 in quick mode runs the whole API. Not the rest of optim/test_lbfgs (against scipy on the real
# objective, restore, stall rules: the same ops), the losses' tensor arithmetic (objective/), the schedule's and
# the tiles' plans over the same engine (run/test_schedule, run/test_gradients), core/, media/, sweep/, ui/, api/
# or the CLI: they reach TensorFlow only through what is tested here, and run in `make test` (issue #25: CI in 20
# minutes).
LBFGS_ON_OLD_TF := $(addprefix tests/optim/test_lbfgs.py::, \
    test_in_graph_lbfgs_reaches_the_known_minimum_of_a_box_constrained_quadratic_as_scipy_does \
    test_the_compact_model_is_the_two_loop_recursion test_a_resumed_in_graph_run_gives_the_same_bytes \
    test_the_default_run_is_in_graph_lbfgs_and_its_record_says_why)
OLD_TF_TESTS := tests/network tests/optim/test_optimizers.py tests/optim/test_param.py $(LBFGS_ON_OLD_TF) \
    tests/run/test_loop.py tests/run/test_checkpoint.py tests/measure/test_memory.py
test-oldest-tf: $(OLD_VENV)/.installed
	NSTKIT_PROGRESS=0 NSTKIT_QUICK=1 TF_CPP_MIN_LOG_LEVEL=2 $(OLD_VENV)/bin/python -m pytest $(PYTEST_PARALLEL) \
	    --nbval-lax -m "not slow" $(OLD_TF_TESTS) notebooks/01_vanilla_resnet_nst.ipynb

lab: env  # make lab MODE=showcase: every notebook in a few minutes, random weights (NSTKIT_MODE)
	NSTKIT_MODE=$(MODE) $(BIN)/jupyter lab notebooks

showcase: env  # re-make the stored notebook outputs and the README's figures (img/results/)
	$(BIN)/python scripts/run_notebooks.py --mode showcase

bench: env
	mkdir -p out
	$(BIN)/python benchmarks/suite.py --json out/bench.json

clean:
	rm -rf $(VENV) $(OLD_VENV) out
