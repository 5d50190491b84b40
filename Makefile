# Every target builds its own virtualenv (.venv) from pyproject.toml + constraints.txt first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: quickstart test benchmark clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[notebooks,dev]"
	touch $(INSTALLED)

quickstart: $(INSTALLED)  ## BadNet-poison the embedded MNIST, train, print accuracy and attack success
	$(VENV)/bin/unlearnkit demo

test: $(INSTALLED)  ## the test suite
	$(PY) -m pytest

benchmark: $(INSTALLED)  ## training and SSD-importance throughput against plain-PyTorch baselines
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/ssd_importance.py

clean:
	rm -rf $(VENV) outputs/*/ .pytest_cache
