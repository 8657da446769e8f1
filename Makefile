# edgelm — the two commands that work on a fresh Debian 12 machine:
#   make run    installs what is missing, builds, generates text with the default model
#   make test   installs, builds (release + ASan/UBSan), runs every test through CTest
BUILD      ?= build/release
ASAN_BUILD ?= build/asan
PROMPT     ?= Once upon a time
TOKENS     ?= 128
CTEST_JOBS ?= 2

.PHONY: run test deps build asan test-release test-asan fuzz format clean

run: build
	$(BUILD)/apps/edgelm/edgelm run -p "$(PROMPT)" -n $(TOKENS)

test: build asan test-release test-asan

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
	cmake --build $(BUILD)

# Sanitizer build with clang: ASan + UBSan, plus the libFuzzer targets (a short run of each is a test).
asan: deps
	@CC=clang CXX=clang++ cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DEDGELM_SANITIZE=ON -DEDGELM_FUZZ=ON > /dev/null
	cmake --build $(ASAN_BUILD)

test-release:
	ctest --test-dir $(BUILD) --output-on-failure -j $(CTEST_JOBS)

test-asan:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(CTEST_JOBS) -LE no-asan

# Long fuzz runs (minutes per target); the tests run each target briefly.
fuzz: asan
	bench/fuzz

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf build
