# Thin wrapper: one word per job. The real build is CMake (CMakeLists.txt).
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600

SOAK_MINUTES ?= 15

.PHONY: all deps build test demo bench bench-ranks load-check asan fuzz soak test-distributed clean

all: build

deps:
	@./scripts/install-deps

# CMAKE_FLAGS: more cmake options (CI: -DVEIL_WERROR=ON, zero warnings)
CMAKE_FLAGS ?=

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
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

# one inference spread over MPI ranks on this machine: rank 0 alone against R ranks, per model
RANKS ?= 2
bench-ranks: build
	@VEIL_THREADS=1 ./$(BUILD)/veil bench models --ranks $(RANKS) --samples 3 --threads 1

# MPI over two "hosts" (network namespaces) and two servers behind nginx with one key store (root)
test-distributed: build
	@./tests/dist/test_mpi.sh $(BUILD) .
	@./tests/dist/test_hosts.sh $(BUILD) .

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

# a local server under MINUTES of mixed traffic, restarts and faults: lost or wrong answers, 5xx, RSS and fds
soak: build
	@./bench/soak.sh $(BUILD) $(SOAK_MINUTES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
