# fintrans: the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
SHELL    := /bin/bash
# The function modules (no tests of their own: the template build runs in functions/) go first, so
# that the run closes on the test results.
MODULES  := functions/detect functions/generator functions/viewer . shared shared/devkit
BIN      := bin/fintrans

.PHONY: run test bench build vet fmt fuzz clean

## run: the whole pipeline on embedded Kafka and Redis (KAFKA_BROKERS / REDIS_URL point it at real ones)
run:
	@$(GO) build -o $(BIN) ./cmd/fintrans
	@$(BIN) run

## test: the tests of every module (needs redis-server on PATH; .ci/run installs it)
test:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for m in $(MODULES); do \
		echo "== go vet + go test in $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) test -count=1 -timeout 25m ./...) 2>&1 | tee -a $$log; \
		test $${PIPESTATUS[0]} -eq 0 || { echo "packages: $$(grep -c '^ok' $$log) passed, $$(grep -c '^FAIL' $$log) failed"; exit 1; }; \
	done; \
	echo "packages: $$(grep -c '^ok' $$log) passed, $$(grep -c '^FAIL' $$log) failed"

## bench: each stage's throughput beside its ceiling; last line is BENCH {...}
bench:
	$(GO) run ./cmd/fintrans bench $(BENCH_FLAGS)

## build: the one binary
build:
	$(GO) build -o $(BIN) ./cmd/fintrans

vet:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

fmt:
	gofmt -w $$(git ls-files '*.go')

## fuzz: run every fuzz target for FUZZTIME (default 5m) each
FUZZTIME ?= 5m
fuzz:
	@set -e; for pkg in ./codec/cloudevent ./codec/httpreq ./codec/seedline ./money; do \
		for target in $$(cd shared && $(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			(cd shared && $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg); \
		done; \
	done

clean:
	rm -rf bin
