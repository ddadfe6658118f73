# Thin wrapper: one word per job. The real build is CMake (CMakeLists.txt).
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600

.PHONY: all deps build test demo bench load-check asan fuzz clean

all: build

deps:
	@./scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@cd $(BUILD) && ./digits_fhe

bench: build
	@./$(BUILD)/veil bench pbs
	@./$(BUILD)/veil bench kernels
	@./$(BUILD)/veil bench circuit
	@./$(BUILD)/veil bench models

# a local server under concurrent encrypted requests: throughput, latency percentiles, none lost or wrong
load-check: build
	@./bench/load_check.sh $(BUILD) 16 4 2

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DVEIL_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && VEIL_TEST_QUICK=1 ctest --output-on-failure -j $(JOBS)

# every fuzz target for FUZZ_SECONDS each (libFuzzer, clang, ASan+UBSan): executions, coverage, crashes
fuzz: build
	@./tests/fuzz/run.sh fuzz . $(BUILD) $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
