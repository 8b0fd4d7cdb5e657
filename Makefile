# The README's test command is `make test`; .ci/run calls exactly that.
GO ?= go
# Short fuzz runs of every fuzz target as part of the tests (seconds each).
FUZZTIME ?= 5s

.PHONY: test check vet fmt race fuzz demo build bench

build:
	$(GO) build -o bin/orderflow ./cmd/orderflow

# Everything CI runs: formatting, vet, the race-enabled test suite and a short
# burst of every fuzz target.
test: check race fuzz

check: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -count=1 -timeout 20m ./...

# Runs each fuzz target for FUZZTIME (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || { echo "FAIL fuzz $$pkg $$target"; $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; exit 1; }; \
	  done; \
	done

demo:
	$(GO) run ./cmd/orderflow demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
