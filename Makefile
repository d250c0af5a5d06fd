# Quick start:  make run   (install what is missing, build, run on the built-in default model)
#               make test  (install what is missing, build, run the whole test suite)
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all deps test-deps build run test test-asan test-json-100 clean

all: build

deps:
	scripts/install-deps.sh

test-deps:
	scripts/install-deps.sh --test

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/dsv3 chat

# The whole suite, then the base, format, kernel, model (golden parity, bad checkpoints),
# tokenizer, engine and HTTP server tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
test: test-deps build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) test-asan

ASAN_TESTS = test_base test_format test_kernels test_kernels_model test_model test_tokenizer test_runtime test_server test_grammar
test-asan: test-deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSV3_SANITIZE=ON -DDSV3_BUILD_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target $(ASAN_TESTS)
	set -e; for t in $(ASAN_TESTS); do echo "== $$t (ASan + UBSan)"; $(ASAN_BUILD)/tests/$$t --gtest_brief=1; done

# Structured output at the issue's size: 100 of 100 outputs per format validated with ajv
# (make test runs 10 of each).
test-json-100: test-deps build
	DSV3_JSON_SAMPLES=100 tests/server/js/run.sh $(BUILD)/dsv3

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
