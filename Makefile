# Roost: `make run` builds and runs the daemon's main job, `make test` runs every test.
# Both install what they need on a fresh Debian 12 machine.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

SWIFT ?= swift
VENV := .venv
PY := $(VENV)/bin/python
CBUILD := .build-c
RUN_DIR := .run
JOBS ?= $(shell nproc)

# Debian packages the build and the tests need.
APT_PACKAGES := libopenblas-dev libsystemd-dev pkg-config python3-venv gcc gcc-aarch64-linux-gnu qemu-user
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export ROOST_PYTHON := $(abspath $(PY))

.PHONY: build release deb test-system run test test-swift test-c test-python test-run deps venv fixtures fixtures-transformers bench demo-model clean help

help:
	@echo "make run       build release and serve models/ (the demo model) on ./.run/roost.sock in the foreground"
	@echo "make test      every test: C kernels (native and aarch64 under qemu), swift test, Python checks"
	@echo "make build     debug build;  make release: release build"
	@echo "make fixtures  regenerate the committed test vectors (gguf-py) and transformer/MoE reference models (.venv-fixtures)"
	@echo "make bench     model and kernel benchmarks (JSON) on an RWKV-7 0.1B-shaped random model"
	@echo "make demo-model  retrain models/roost-demo.gguf with torch (.venv-fixtures; not part of make test)"
	@echo "make deb       dist/roost_VERSION_ARCH.deb from the release build"
	@echo "make test-system  the .deb: lintian, and dpkg -i into a clean Debian root (debootstrap)"
	@echo "make clean     remove build folders, the venv and generated files"

# ---- setup ------------------------------------------------------------------------------

deps: $(CBUILD)/.deps
$(CBUILD)/.deps: Makefile
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p $(CBUILD) && touch $@

venv: $(VENV)/.stamp
$(VENV)/.stamp: tools/requirements.txt | deps
	@echo "Setting up the Python venv in $(VENV)"
	@python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r tools/requirements.txt
	@touch $@

# ---- build ------------------------------------------------------------------------------

build: deps
	$(SWIFT) build -j $(JOBS)

# The one release build, for `make run`, the benchmarks and the package: the Swift runtime is
# linked in, so the .deb's target machine needs no Swift toolchain. Builds roostd and roost.
release: deps
	$(SWIFT) build -c release --static-swift-stdlib -j $(JOBS)

# ---- package ----------------------------------------------------------------------------

VERSION := $(shell sed -n 's/.*static let string = "\(.*\)".*/\1/p' Sources/roostd/Version.swift)
DEB := dist/roost_$(VERSION)_$(shell dpkg --print-architecture 2>/dev/null || echo amd64).deb

deb: release
	PYTHON=python3 packaging/build-deb.sh

# Package tests: lintian, and the .deb installed with dpkg into a debootstrapped Debian root
# (cached under .cache/), `roostd --version` run there without a Swift toolchain.
test-system: deb venv
	@for p in lintian debootstrap; do command -v $$p >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq lintian debootstrap >/dev/null; break; }; done
	ROOST_DEB=$(abspath $(DEB)) $(PY) -m pytest -q -s Tests/system

# ---- run --------------------------------------------------------------------------------

# A random-weight model at RWKV-7 0.1B's shape in llama.cpp's layout (212 MB, not in git), for `make bench`.
DEMO_MODEL := $(RUN_DIR)/rwkv7-0.1b-q8_0.gguf

$(DEMO_MODEL): tools/make_synthetic.py | venv
	@mkdir -p $(RUN_DIR)
	$(PY) tools/make_synthetic.py --preset rwkv7-0.1b --type q8_0 --out $@

# The daemon in the foreground, serving models/ (the bundled demo model) on a socket in .run/;
# Ctrl-C stops it cleanly (sessions are saved in .run/state).
RUN_SOCKET := $(RUN_DIR)/roost.sock

run: release
	@mkdir -p $(RUN_DIR)
	@echo "roostd is starting on $(abspath $(RUN_SOCKET)), serving models/ (Ctrl-C stops it). Talk to it with:"
	@echo "  .build/release/roost chat --socket $(RUN_SOCKET)"
	@echo "  curl --unix-socket $(RUN_SOCKET) http://localhost/v1/chat/completions -d '{\"model\": \"roost-demo\", \"messages\": [{\"role\": \"user\", \"content\": \"Give me a proverb.\"}], \"max_tokens\": 48}'"
	exec .build/release/roostd serve --models models --socket $(RUN_SOCKET) --state-dir $(RUN_DIR)/state

bench: release $(DEMO_MODEL)
	.build/release/roostd inspect $(DEMO_MODEL)
	.build/release/roostd bench $(DEMO_MODEL) --json
	.build/release/roostd bench-kernels --json

demo-model:
	python3 -m venv .venv-fixtures
	.venv-fixtures/bin/pip install -r tools/requirements-fixtures.txt
	nice -n 19 .venv-fixtures/bin/python tools/train_demo_model.py --minutes 25

# ---- tests ------------------------------------------------------------------------------

test: deps venv test-c test-swift test-python test-run

# C kernel tests: every SIMD path against its _ref, natively (all x86 paths this CPU has)
# and cross-compiled for AArch64 under qemu, with and without the dotprod extension.
CK_SRC := $(wildcard Sources/CKernels/*.c) $(wildcard Tests/CKernelsC/*.c)
CK_HDR := $(wildcard Sources/CKernels/*.h Sources/CKernels/include/*.h Tests/CKernelsC/*.h)
CK_FLAGS := -std=c11 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -ISources/CKernels/include -ISources/CKernels -ITests/CKernelsC

$(CBUILD)/ckernels-test: $(CK_SRC) $(CK_HDR) | deps
	gcc $(CK_FLAGS) $(CK_SRC) -lm -lpthread -o $@

$(CBUILD)/ckernels-test-aarch64: $(CK_SRC) $(CK_HDR) | deps
	aarch64-linux-gnu-gcc $(CK_FLAGS) -static $(CK_SRC) -lm -lpthread -o $@

test-c: $(CBUILD)/ckernels-test $(CBUILD)/ckernels-test-aarch64
	$(CBUILD)/ckernels-test
	QEMU_CPU=max qemu-aarch64 $(CBUILD)/ckernels-test-aarch64
	QEMU_CPU=cortex-a57 qemu-aarch64 $(CBUILD)/ckernels-test-aarch64

test-swift: deps venv
	$(SWIFT) build --build-tests -j $(JOBS)
	$(SWIFT) test --skip-build

test-python: venv test-swift
	ROOSTD=$(abspath .build/debug/roostd) ROOST=$(abspath .build/debug/roost) $(PY) -m pytest -q Tests/python \
	  --ignore=Tests/python/test_make_run.py

# `make run` itself, started in the background, answered through its socket and stopped (release build).
test-run: venv release
	$(PY) -m pytest -q Tests/python/test_make_run.py

# ---- fixtures ---------------------------------------------------------------------------

# Kernel vectors (gguf-py, the test venv) and the transformer/MoE/Mamba reference models
# (Tests/Fixtures/transformers: torch + transformers in $(FIXTURES_VENV), llama.cpp from
# .venv-bench to quantize and cross-check). Not part of `make test`; the results are committed.
FIXTURES_VENV ?= .venv-fixtures
TORCH_WHEEL ?= /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl

fixtures: venv fixtures-transformers
	$(PY) tools/gen_kernel_vectors.py --out Tests/Fixtures/kernels

fixtures-transformers: $(FIXTURES_VENV)/.stamp
	nice -n 10 $(FIXTURES_VENV)/bin/python tools/make_transformer_fixtures.py

# CPU-only torch first (a local wheel when there is one, else PyTorch's CPU index), so the
# requirements' `torch` does not pull the CUDA build from PyPI.
$(FIXTURES_VENV)/.stamp: tools/requirements-fixtures.txt
	python3 -m venv $(FIXTURES_VENV)
	if [ -f "$(TORCH_WHEEL)" ]; then $(FIXTURES_VENV)/bin/pip install -q "$(TORCH_WHEEL)"; \
	else $(FIXTURES_VENV)/bin/pip install -q torch --index-url https://download.pytorch.org/whl/cpu; fi
	$(FIXTURES_VENV)/bin/pip install -q -r tools/requirements-fixtures.txt
	touch $@

clean:
	rm -rf .build .build-* $(CBUILD) $(VENV) $(RUN_DIR)
