# Quick start:  make run   (install what is missing, build, run on the built-in default model)
#               make test  (install what is missing, build, run the whole test suite)
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all deps test-deps build run test test-asan clean

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

ASAN_TESTS = test_base test_format test_kernels test_kernels_model test_model test_tokenizer test_runtime test_server
test-asan: test-deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSV3_SANITIZE=ON -DDSV3_BUILD_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target $(ASAN_TESTS)
	set -e; for t in $(ASAN_TESTS); do echo "== $$t (ASan + UBSan)"; $(ASAN_BUILD)/tests/$$t --gtest_brief=1; done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
