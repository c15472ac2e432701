# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint install clean

$(STAMP): requirements.txt requirements-yolov5.txt requirements-export.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-yolov5.txt -r requirements-export.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	YOLO_OFFLINE=1 $(BIN)/yoloslim pipeline

test: $(STAMP)
	YOLO_OFFLINE=1 $(BIN)/python -m pytest -q

test-fast: $(STAMP)
	YOLO_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check yoloslim tests scripts
	$(BIN)/ruff format --check yoloslim tests scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) runs
