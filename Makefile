# Two commands a newcomer needs: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
WEIGHTS ?= imagenet
STEPS  ?= 200
CONTENT ?= img/content/astronaut.jpg
STYLE  ?= img/style/hexagons.png

.PHONY: env demo test lab bench clean

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 2>&1 | grep -v "Location '" || true
	$(BIN)/pip install --quiet -e ".[test]" 2>&1 | grep -v "Location '" || true
	$(BIN)/python -c "import nstkit, tensorflow, pytest, nbval"
	touch $@

demo: env
	mkdir -p out
	$(BIN)/nstkit stylize $(CONTENT) $(STYLE) -o out/demo.png --weights $(WEIGHTS) --steps $(STEPS)

test: env
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest --nbval-lax tests notebooks

lab: env
	$(BIN)/jupyter lab notebooks

bench: env
	mkdir -p out
	$(BIN)/python benchmarks/suite.py --json out/bench.json

clean:
	rm -rf $(VENV) out
