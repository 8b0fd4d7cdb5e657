# The README's test command is `make test`; .ci/run calls exactly that.
GO ?= go
# Short fuzz runs of every fuzz target as part of the tests (seconds each).
FUZZTIME ?= 3s

.PHONY: test check vet fmt race fuzz demo build bench realdata-full

build:
	$(GO) build -o bin/orderflow ./cmd/orderflow

# Everything CI runs: Chromium for the browser test (installed from Debian's
# packages when missing), formatting, vet, the dashboard assets against a
# clean rebuild, the race-enabled test suite, the real-data reference tests
# in full, a short burst of every fuzz target and a one-minute soak.
test: chromium check dashboard-verify race realdata-full fuzz soak-ci

# The race stage runs with -short: the single-threaded packages' real-data
# reference tests (binance, book, flow, depthflow) then use one or two
# recordings, as the detector only slows them tenfold there. Here those
# packages run again in full without -race.
realdata-full:
	$(GO) test -count=1 ./binance ./book ./flow ./depthflow

check: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -short -count=1 -timeout 20m ./...

# Runs each fuzz target for FUZZTIME (go test -fuzz takes one target at a
# time). A failure that saved a failing input under testdata/fuzz is a real
# one: that input is replayed as a seed from then on, so the retry fails
# too. A failure with no input saved (a fuzz worker stalled on a loaded
# machine) is shown and retried once.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$target"; \
	    log=$$(mktemp); \
	    if ! $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg >$$log 2>&1; then \
	      grep -v '^fuzz: elapsed' $$log; rm -f $$log; \
	      echo "fuzz $$pkg $$target failed; retrying once (a saved failing input fails again)"; \
	      $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || { echo "FAIL fuzz $$pkg $$target"; exit 1; }; \
	    fi; rm -f $$log; \
	  done; \
	done

demo:
	$(GO) run ./cmd/orderflow demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The browser dashboard (dashboard/web -> dashboard/dist, embedded by
# go:embed). `make dashboard` rebuilds the committed assets with the pinned
# esbuild; `make dashboard-verify` (part of `make test`) rebuilds them from
# a clean `npm ci` into a temporary directory and fails if any byte differs
# from what is committed. The Go test in ./dashboard checks the recorded
# source hashes without npm.
.PHONY: dashboard dashboard-verify chromium
dashboard:
	cd dashboard/web && npm ci --no-audit --no-fund && node build.mjs

dashboard-verify:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	mkdir -p "$$tmp/dashboard"; cp -R dashboard/web "$$tmp/dashboard/web"; rm -rf "$$tmp/dashboard/web/node_modules"; \
	(cd "$$tmp/dashboard/web" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && node build.mjs "$$tmp/out" >/dev/null); \
	for f in app.js app.css index.html BUILD.txt; do \
	  cmp -s "$$tmp/out/$$f" "dashboard/dist/$$f" || { echo "dashboard/dist/$$f differs from a clean rebuild of dashboard/web: run make dashboard"; exit 1; }; \
	done; echo "dashboard assets match a clean rebuild of their sources"

# Debian's Chromium for the browser test (e2e), installed when missing.
chromium:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The fault-injection suite: every fault injected into the service
# streaming real recordings from the simulator, with the table printed.
.PHONY: chaos soak-ci
chaos:
	@status=0; \
	$(GO) test -count=1 -v -timeout 20m -run 'TestFaults' ./chaos -chaos.n=3 || status=1; \
	$(GO) test -count=1 -v -run 'TestFlagsRefusedBeforeStart' ./cmd/orderflow || status=1; \
	exit $$status

# A one-minute soak: random faults, then the one-line verdict (non-zero exit
# when anything was lost, duplicated, mismatched or leaked).
soak-ci:
	$(GO) run ./cmd/orderflow soak --duration 1m
