# One place for the project's commands. `make demo` runs the main job on a bundled input;
# `make check` runs every check CI runs.

CARGO ?= cargo
# Every check CI runs, in order (`.ci/run` runs and times them one by one).
CHECKS = fmt lint test mzmlb doc check-aarch64 bench-smoke fuzz-smoke cdk python cloud web

.PHONY: demo check print-checks fmt lint test mzmlb doc check-aarch64 bench-smoke cdk bench python cloud web web-demo fuzz-smoke

demo:
	$(CARGO) run --release --bin mzforge -- run fixtures/data/sim_profile.mzML --out out --min-snr 3

check: $(CHECKS)

print-checks:
	@echo $(CHECKS)

fmt:
	$(CARGO) fmt --all --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 python/feature-parity.py

test:
	python3 fuzz/seed.py >/dev/null
	$(CARGO) test --workspace

# mzMLb input (the `mzmlb` feature, linking the system HDF5: Debian libhdf5-dev libblosc-dev),
# linted and tested on its own because the default, static and cross builds leave it out.
mzmlb:
	$(CARGO) clippy --workspace --all-targets --features mzforge/mzmlb -- -D warnings
	$(CARGO) test --workspace --features mzforge/mzmlb --test engine reading::

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

# The NEON kernel Graviton runs, checked against the scalar reference under qemu-user. The
# engine itself stays optimised (its profile override); its dependencies are built without
# optimisation here, which halves this cross build (the tests run a little slower under qemu).
# Four unit tests that hold no code of their own per architecture are left to `make test`:
# three compare two parsers or decoders over every real file, mostly in mzdata's unoptimised
# code here, and one deconvolves dense spectra several ways; under qemu they took 130 of the
# unit tests' 170 s (20-45 s each).
AARCH64_TEST = $(CARGO) test -p mzforge --target aarch64-unknown-linux-gnu --config 'profile.dev.package."*".opt-level=0'
AARCH64_LEFT_TO_X86 = --skip _on_every_real_file --skip dense_spectrum_shortcuts_change_nothing
check-aarch64:
	@if command -v qemu-aarch64 >/dev/null && command -v aarch64-linux-gnu-gcc >/dev/null \
	    && rustup target list --installed | grep -q aarch64-unknown-linux-gnu; then \
	  $(AARCH64_TEST) --lib -- $(AARCH64_LEFT_TO_X86) && \
	  $(AARCH64_TEST) --test engine -- accuracy:: fixtures:: reading::; \
	elif [ -n "$$CI" ]; then \
	  echo "check-aarch64: qemu-user, gcc-aarch64-linux-gnu and the rust target are required in CI" >&2; exit 1; \
	else \
	  echo "check-aarch64: skipped (install qemu-user gcc-aarch64-linux-gnu; rustup target add aarch64-unknown-linux-gnu)"; \
	fi

# The fuzz targets' bodies (fuzz/, a workspace member: linted by `make lint`, tested by
# `make test` over the seed corpora that fuzz/seed.py cuts from ../shared/data) and the format of
# the thin cargo-fuzz crate around them (fuzz/targets, its own workspace). cargo-fuzz's instrumented build takes about 30 minutes
# on two cores, too slow for CI; `fuzz/run.sh SECONDS` builds and runs the real fuzzers.
fuzz-smoke:
	python3 fuzz/seed.py >/dev/null
	$(CARGO) fmt --manifest-path fuzz/targets/Cargo.toml --check
	$(CARGO) test --workspace --test corpus

# Each bench once, so they cannot rot: criterion's test mode runs every benchmark's routine
# once, after the bench's own checks of its results (5 s here, against 107 s for `--quick`,
# whose unoptimised timings meant nothing). Built with the dev profile, whose dependencies
# `make test` has already compiled (a bench-profile build would compile them all again), and
# selected with --workspace so that dependency features, hence builds, are the same as there
# (`-p mzforge-benches` alone would unify fewer features and rebuild most dependencies).
# Figures come from `make bench`.
bench-smoke:
	$(CARGO) bench --profile dev --workspace --bench '*' -- --test

# S3 (moto), Batch and Lambda against local services; the Batch image built and run (batch-runner/ci.sh).
cloud:
	bash batch-runner/ci.sh

cdk:
	@if [ -f cdk/ci.sh ]; then bash cdk/ci.sh; fi

# The Python wheel: venv, maturin develop, pytest (including the example notebook).
python:
	bash python/ci.sh

# The Django front end: its tests and a real-browser run against the embedded API (web/ci.sh).
web:
	bash web/ci.sh

# Try the front end: the embedded API plus the site on http://127.0.0.1:8000/.
web-demo:
	bash web/run-local.sh

bench:
	$(CARGO) bench -p mzforge-benches
