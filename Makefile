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

.PHONY: build release release-static deb test-system run test test-swift test-c test-python deps venv fixtures bench clean help

help:
	@echo "make run       build release, generate an RWKV-7 0.1B-shaped model, run roostd inspect, bench and bench-kernels"
	@echo "make test      every test: C kernels (native and aarch64 under qemu), swift test, Python checks"
	@echo "make build     debug build;  make release: release build"
	@echo "make fixtures  regenerate the committed test vectors with gguf-py"
	@echo "make bench     model and kernel benchmarks (JSON) with the release build"
	@echo "make deb       dist/roost_VERSION_ARCH.deb (release build with the Swift stdlib linked in)"
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

release: deps
	$(SWIFT) build -c release -j $(JOBS)

# The release build the package ships: the Swift runtime linked in, so the target machine
# needs no Swift toolchain. Builds every product (roostd, and roost when the target exists).
release-static: deps
	$(SWIFT) build -c release --static-swift-stdlib -j $(JOBS)

# ---- package ----------------------------------------------------------------------------

VERSION := $(shell sed -n 's/.*static let string = "\(.*\)".*/\1/p' Sources/roostd/Version.swift)
DEB := dist/roost_$(VERSION)_$(shell dpkg --print-architecture 2>/dev/null || echo amd64).deb

deb: release-static
	PYTHON=python3 packaging/build-deb.sh

# Package tests: lintian, and the .deb installed with dpkg into a debootstrapped Debian root
# (cached under .cache/), `roostd --version` run there without a Swift toolchain.
test-system: deb venv
	@for p in lintian debootstrap; do command -v $$p >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq lintian debootstrap >/dev/null; break; }; done
	ROOST_DEB=$(abspath $(DEB)) $(PY) -m pytest -q -s Tests/system

# ---- run --------------------------------------------------------------------------------

# A random-weight model at RWKV-7 0.1B's shape in llama.cpp's layout (212 MB, not in git).
DEMO_MODEL := $(RUN_DIR)/rwkv7-0.1b-q8_0.gguf

$(DEMO_MODEL): tools/make_synthetic.py | venv
	@mkdir -p $(RUN_DIR)
	$(PY) tools/make_synthetic.py --preset rwkv7-0.1b --type q8_0 --out $@

run: release $(DEMO_MODEL)
	.build/release/roostd inspect $(DEMO_MODEL)
	.build/release/roostd bench $(DEMO_MODEL)
	.build/release/roostd bench-kernels

bench: release $(DEMO_MODEL)
	.build/release/roostd bench $(DEMO_MODEL) --json
	.build/release/roostd bench-kernels --json

# ---- tests ------------------------------------------------------------------------------

test: deps venv test-c test-swift test-python

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
	ROOSTD=$(abspath .build/debug/roostd) $(PY) -m pytest -q Tests/python

# ---- fixtures ---------------------------------------------------------------------------

fixtures: venv
	$(PY) tools/gen_kernel_vectors.py --out Tests/Fixtures/kernels

clean:
	rm -rf .build .build-* $(CBUILD) $(VENV) $(RUN_DIR)
