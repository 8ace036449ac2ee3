# Isoline: the two commands a newcomer needs are `make demo` and `make test`.
# Both install missing Debian packages (deps) and build first.

BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3
CMAKE_ARGS ?=
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps configure build test test-fast demo bench format clean help

all: build

help:
	@echo "make deps    install missing Debian packages (apt-get; root or sudo)"
	@echo "make build   configure and build into $(BUILD_DIR)/"
	@echo "make test    deps + build + every test through CTest"
	@echo "make demo    deps + build + the main job on a real patient (shared data) or a phantom"
	@echo "make bench   deps + build + benchmarks -> bench/results.json"
	@echo "make format  clang-format the C++ sources"

deps:
	@bash scripts/deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DPython_EXECUTABLE=$(PYTHON) $(CMAKE_ARGS)

configure: deps $(BUILD_DIR)/CMakeCache.txt

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The tests run $(JOBS) at a time and each uses every CPU (OpenMP: dose engine, contouring
# network); OpenMP threads that spin while waiting would then steal the CPUs the other tests'
# threads need (the contouring tests ran 3x slower), so they sleep instead, unless the
# caller chose otherwise.
test test-fast: export OMP_WAIT_POLICY ?= PASSIVE

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 1800

# Without the tests that need ../shared/data.
test-fast: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -LE data

demo: build
	@bash scripts/demo.sh $(BUILD_DIR)

bench: build
	$(PYTHON) bench/run.py --build $(BUILD_DIR)

format:
	@find core rtstruct contouring dose adaptive bindings cli phantoms tests \
	  \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' \) -print0 | xargs -0 clang-format -i

clean:
	rm -rf $(BUILD_DIR)

# libFuzzer harnesses of the DICOM readers (clang + ASan) in build-fuzz/; FUZZ_SECONDS per harness.
FUZZ_SECONDS ?= 300
.PHONY: fuzz
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B build-fuzz $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DISOLINE_FUZZ=ON -DISOLINE_CUDA=OFF -DPython_EXECUTABLE=$(PYTHON) \
	  -DCMAKE_CXX_FLAGS="-fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer"
	cmake --build build-fuzz -j $(JOBS) --target fuzz_ct_reader fuzz_rtstruct_reader
	bash rtstruct/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)
