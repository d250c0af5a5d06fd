# Quick start:  make run   (install what is missing, build, run on the built-in default model)
#               make test  (install what is missing, build, run the whole test suite)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
TSAN_BUILD ?= build-tsan
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 3
SOAK_SECONDS ?= 600
JOBS ?= $(shell nproc)

.PHONY: all deps test-deps build run test test-asan test-json-100 fuzz-build fuzz fuzz-smoke test-tsan soak clean

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
# tokenizer, engine and HTTP server tests again under AddressSanitizer + UndefinedBehaviorSanitizer,
# the engine and server tests under ThreadSanitizer, and each fuzzing harness for a few seconds.
test: test-deps build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) test-asan
	$(MAKE) test-tsan
	$(MAKE) fuzz-smoke

ASAN_TESTS = test_base test_format test_kernels test_kernels_model test_model test_tokenizer test_runtime test_server test_grammar
test-asan: test-deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSV3_SANITIZE=ON -DDSV3_BUILD_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target $(ASAN_TESTS)
	set -e; for t in $(ASAN_TESTS); do echo "== $$t (ASan + UBSan)"; $(ASAN_BUILD)/tests/$$t --gtest_brief=1; done

# libFuzzer harnesses (fuzz/), clang + ASan + UBSan; only the libraries they link are built.
fuzz-build: test-deps
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DDSV3_FUZZ=ON -DDSV3_BUILD_TESTS=OFF -DDSV3_BUILD_BENCH=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_harnesses

# Each harness for FUZZ_SECONDS (docs/reliability.md has the figures of a run).
fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# In make test: the seeds and regression inputs, then a few seconds of fuzzing, per harness.
FUZZ_SMOKE_HARNESSES = fuzz_safetensors_header fuzz_checkpoint_index fuzz_model_config fuzz_tokenizer_json fuzz_bpe \
  fuzz_chat_template fuzz_openai_request fuzz_http
fuzz-smoke: fuzz-build
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS) $(FUZZ_SMOKE_HARNESSES)

# The engine and HTTP server tests under ThreadSanitizer (the suppressions file says why
# each entry is there). Left out here, and run in the plain and ASan builds: the four tests
# that hold the server to wall-clock deadlines (a 5 s context check, 10-15 s body uploads) or
# to a resident-memory bound, which TSan's 5-15x slowdown and shadow memory break by design.
TSAN_TESTS = test_runtime test_server
TSAN_SKIP = HttpServer.ContextLimits:HttpServer.BodyLimitsKeepAliveChunkedExpect:HttpHostile.BodyLimitHoldsForEveryEncoding:HttpHostile.MemoryReturnsToItsBaselineAfterLargeRequests
test-tsan: test-deps
	cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSV3_TSAN=ON -DDSV3_BUILD_BENCH=OFF
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target $(TSAN_TESTS) dsv3
	set -e; for t in $(TSAN_TESTS); do echo "== $$t (ThreadSanitizer)"; \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  $(TSAN_BUILD)/tests/$$t --gtest_brief=1 --gtest_filter=-$(TSAN_SKIP); done

# 10 minutes against dsv3 serve (scripts/soak.py says what it sends and what passes).
soak: build
	scripts/soak.py --dsv3 $(BUILD)/dsv3 --seconds $(SOAK_SECONDS)

# Structured output and forced tool calls at the issue's size: 100 of 100 outputs per format validated with ajv
# (make test runs 10 of each).
test-json-100: test-deps build
	DSV3_JSON_SAMPLES=100 tests/server/js/run.sh $(BUILD)/dsv3

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD)
