# Every target builds its own virtualenv (.venv) from pyproject.toml + constraints.txt first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: quickstart test benchmark clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[notebooks,dev,ray]"
	touch $(INSTALLED)

quickstart: $(INSTALLED)  ## the notebook series on the embedded MNIST: outputs/quickstart/
	$(VENV)/bin/unlearnkit run parameters/quickstart.yaml

test: $(INSTALLED)  ## the test suite, then the real fine-tune of the pretrained language model
	$(PY) -m pytest
	$(PY) -m pytest -m lm_finetune tests/test_text_finetune.py

benchmark: $(INSTALLED)  ## training and SSD-importance throughput against plain-PyTorch baselines
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/ssd_importance.py

clean:
	rm -rf $(VENV) outputs/*/ .pytest_cache
