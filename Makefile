# NEO in Go. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
PEERS_DIR ?= $(abspath ../shared/peers)
BIN := $(CURDIR)/bin
FUZZTIME ?= 10s

.PHONY: help build test unit integration mysql fuzz-short fuzz vet lint generate check-generate golden check-golden bench demo clean \
	conformance-quick conformance-mixed conformance-importer conformance zbench

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build every command into ./bin
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

vet: ## gofmt check and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit: ## unit tests with the race detector
	$(GO) test -race -count=1 ./...

integration: build ## multi-process tests against real neoppod nodes (needs ../shared/peers/setup.sh)
	NEO_PEERS=$(PEERS_DIR) NEO_BIN=$(BIN) $(GO) test -race -count=1 -tags integration -timeout 20m ./internal/integration/... ./neonet/... ./filestorage/... ./pickleref/... ./importconf/... ./storage/backend/importer/...

mysql: ## MySQL backend and neostorage -a MySQL tests on one private MariaDB server (mariadb.sh installs Debian's mariadb-server if missing; RocksDB too if mariadb-plugin-rocksdb is installed)
	@d=$$(mktemp -d /tmp/neo-mysql.XXXXXX) && \
	s=$$(MARIADB_ARGS=$$([ -e /usr/lib/mysql/plugin/ha_rocksdb.so ] && echo --plugin-load-add=ha_rocksdb) $(PEERS_DIR)/mariadb.sh start $$d | tail -1) || exit 1; \
	NEO_PEERS=$(PEERS_DIR) NEO_MYSQL_SOCKET=$$s $(GO) test -race -count=1 ./storage/backend/mysql/... ./cmd/neostorage/ ./internal/mysqltest/ && \
	NEO_MYSQL_SOCKET=$$s $(GO) test -race -count=1 -run TestMySQL ./storage/backend/importer/; st=$$?; \
	$(PEERS_DIR)/mariadb.sh stop $$d; rm -rf $$d; exit $$st

fuzz-short: ## run every fuzz target briefly (FUZZTIME, default 10s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

test: vet unit integration mysql check-golden conformance-quick conformance-mixed stress-short fuzz-short ## everything CI runs: vet, race unit tests, integration, MySQL backend, golden check, ZODB conformance (quick, all-Go and mixed), stress with faults (short), short fuzz

golden: ## regenerate proto/testdata golden vectors with neoppod's encoder
	. $(PEERS_DIR)/env.sh && "$$PY" scripts/gen-golden

check-golden: ## fail if proto/testdata golden vectors differ from neoppod's output
	. $(PEERS_DIR)/env.sh && "$$PY" scripts/gen-golden --check

bench: ## benchmarks of the hot paths (use benchstat to compare runs)
	$(GO) test -run '^$$' -bench . -benchmem ./...

generate: ## regenerate generated code
	$(GO) generate ./...

check-generate: generate ## fail if generated code is stale
	@git diff --exit-code -- '*.go' || { echo "generated code is stale: run make generate"; exit 1; }

demo: build ## start a Go cluster (neosimple), write and read ZODB objects with neoppod's client
	./scripts/demo

conformance-quick: build ## ZODB conformance, quick subset (29 tests, ~2 min), on Go clusters vs neoppod's baseline
	./scripts/conformance quick

conformance-importer: build ## ZODB conformance, quick subset, on a Go cluster whose storage is the Importer backend (empty source) vs neoppod's baseline
	CONF_IMPORTER=1 CONF_NAME=conf-importer ./scripts/conformance quick

conformance-mixed: build ## ZODB conformance, quick subset, on both mixed Go/neoppod clusters (~4 min) vs neoppod's baseline
	./scripts/conformance mixed

conformance: build ## full ZODB conformance suite (108 tests, ~10 min) on Go clusters vs neoppod's baseline
	./scripts/conformance full

ZBENCH_ARGS ?=
zbench: build ## zbench.py on a Go cluster and on neoppod (same topology); prints Go/neoppod ratios
	./scripts/zbench $(ZBENCH_ARGS)

NEOBENCH_ARGS ?=
.PHONY: neobench
neobench: build ## bin/neobench (native Go client) on a Go cluster and on neoppod (same topology); prints Go/neoppod ratios
	./scripts/neobench $(NEOBENCH_ARGS)

# Stress and fault injection through neoppod's Python client or our Go
# client (bin/neostress --help). stress-short is part of 'make test'.
STRESS_ARGS ?=
STRESS_SUITE ?= default
STRESS_DURATION ?= 75s
.PHONY: stress-short stress
STRESS_SHORT_SUITE ?= go:storage-kill+admin-kill go:tcp-reset go:slow-disk
stress-short: build ## stress, ~3.5 min: on an all-Go cluster (2 storages), 50 s each of storage kills every 3 s (admin every 4th), TCP resets, a slow disk; each verified and replica-checked
	$(BIN)/neostress --peers $(PEERS_DIR) --suite '$(STRESS_SHORT_SUITE)' --duration 50s $(STRESS_ARGS)

stress: build ## stress suite, ~12 min: STRESS_SUITE scenarios (Go, mixed, neoppod; storage/admin/master kills, TCP resets, slow disk; one through our Go client) of STRESS_DURATION each
	$(BIN)/neostress --peers $(PEERS_DIR) --suite '$(STRESS_SUITE)' --duration $(STRESS_DURATION) --in-flight-ok $(STRESS_ARGS)

clean: ## remove built binaries
	rm -rf $(BIN)
