# mailflow: `make run` prints the conformance report for the in-process reference
# topology; `make test` runs every test. Tools are installed by `make tools`.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
GINKGO_VERSION      := v2.34.0
# staticcheck 2026.2.2 is module version v0.8.2
STATICCHECK_VERSION := v0.8.2
GINKGO      := $(GOBIN)/ginkgo
STATICCHECK := $(GOBIN)/staticcheck
REPORT_DIR  ?= report
# Parallel ginkgo processes; every spec builds its own topology on its own addresses.
PROCS       ?= 2

.PHONY: all run test unit suites bench fuzz lint tools clamd spamd build clean mta-images reference-image scanner-image flake \
	test-containers test-mta bench-containers bench-postfix bench-org docker-check docker-clean soak

# Docker targets stop at once, with one line, when no engine answers.
DOCKER_CHECK = @docker info >/dev/null 2>&1 || { echo "make $@: no Docker engine answers (docker info failed); the container and MTA targets need one"; exit 1; }
MTAS ?= postfix exim opensmtpd chasquid
# Worker processes per MTA: its specs mostly wait on the MTA's real-time timers.
MTA_PROCS ?= 6
# Every container and network a run creates must be gone when it ends.
# What a Docker target leaves behind: labelled containers and networks that were not
# there when it started (the engine may be shared with another run, or hold what a
# killed run left, which make docker-clean removes), less an empty network the engine
# will not remove for a stale endpoint count (scripts/docker-leftovers.sh says which).
# Each make run labels what it creates with its own batch (targets/dockernet), so other
# runs sharing the engine are not counted.
MAILFLOW_BATCH := $(or $(MAILFLOW_BATCH),$(shell od -An -N6 -tx1 /dev/urandom | tr -d ' \n'))
export MAILFLOW_BATCH
DOCKER_LIST = { docker ps -aq --filter label=org.mailflow.server --filter label=org.mailflow.batch=$(MAILFLOW_BATCH); \
	docker network ls -q --filter label=org.mailflow.network --filter label=org.mailflow.batch=$(MAILFLOW_BATCH); } | sort
LEFTOVERS_BEFORE = mkdir -p $(REPORT_DIR) && $(DOCKER_LIST) > $(REPORT_DIR)/.docker-before-$@
LEFTOVERS = scripts/docker-leftovers.sh $@ $(REPORT_DIR)/.docker-before-$@

all: build

build:
	$(GO) build ./...
	CGO_ENABLED=0 $(GO) build -o bin/mailflow ./cmd/mailflow

## run: the conformance suite against the in-process reference topology, with the report
run: build clamd spamd
	./bin/mailflow conformance --report-dir $(REPORT_DIR)

## flake: the conformance run FLAKE_RUNS times (20) at the default parallelism and once
## with --procs 1; every run must give the serial run's verdicts, clause by clause
FLAKE_RUNS ?= 20
flake: build
	@mkdir -p $(REPORT_DIR)/flake && verdicts() { awk '/^[A-Z]+-[0-9]+ /{print $$1, $$3}' "$$1"; }; \
	./bin/mailflow conformance --procs 1 --report-dir $(REPORT_DIR)/flake > $(REPORT_DIR)/flake/serial.txt 2>&1; \
	verdicts $(REPORT_DIR)/flake/serial.txt > $(REPORT_DIR)/flake/serial.verdicts; \
	echo "serial: $$(grep '^Totals' $(REPORT_DIR)/flake/serial.txt)"; rc=0; \
	for i in $$(seq 1 $(FLAKE_RUNS)); do \
	  start=$$(date +%s%N); ./bin/mailflow conformance --report-dir $(REPORT_DIR)/flake > $(REPORT_DIR)/flake/run-$$i.txt 2>&1; \
	  took=$$(( ($$(date +%s%N) - start) / 1000000 )); \
	  if verdicts $(REPORT_DIR)/flake/run-$$i.txt | diff -q $(REPORT_DIR)/flake/serial.verdicts - >/dev/null; then \
	    echo "run $$i: same verdicts ($$took ms)"; \
	  else echo "run $$i: verdicts differ from the serial run:"; verdicts $(REPORT_DIR)/flake/run-$$i.txt | diff $(REPORT_DIR)/flake/serial.verdicts - ; rc=1; fi; \
	done; exit $$rc

## test: unit tests, then the Ginkgo suites in parallel
test: unit suites

unit: clamd spamd
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /suites/)
	@# The patched libraries under third_party/ are modules of their own, with tests.
	@# Upstream's TestServerAcceptErrorHandling races its own Close against the listener's
	@# second error (Serve may return nil first; it fails about once in 300 runs with or
	@# without the patch), so it is skipped rather than retried.
	$(GO) -C third_party/emersion/go-smtp test -race -count=1 -skip '^TestServerAcceptErrorHandling$$' ./...

suites: tools
	$(GINKGO) -p --procs=$(PROCS) --timeout=8m --label-filter='$(LABELS)' ./suites/...

## bench: every benchmark with allocations; those of generated organisations (routes,
## directory, scenario parsing, in-process start-up) at 10, 100 and 200 sites
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## fuzz: every Fuzz target of the module for FUZZTIME each (1m; make fuzz FUZZTIME=10m),
## FUZZJOBS of them side by side (1), with its executions; fails when any finds a
## crasher, which it writes to the package's testdata/fuzz/FuzzXxx/ (FUZZFLAGS: e.g.
## -parallel 1, one fuzzing worker per target)
FUZZTIME  ?= 1m
FUZZJOBS  ?= 1
FUZZFLAGS ?=
fuzz:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZJOBS=$(FUZZJOBS) FUZZFLAGS='$(FUZZFLAGS)' REPORT_DIR=$(REPORT_DIR) scripts/fuzz.sh

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## reference-image: the FROM scratch image of the static mailflow binary (tag = hash of
## the binary and Dockerfile; reused when unchanged)
reference-image:
	$(DOCKER_CHECK)
	@containers/reference/build-image.sh

## test-containers: Docker tests of the target, then the suites against the reference
## topology in containers (one per server, and the Edges' clamd and spamd in the
## scanners' image); report in $(REPORT_DIR)/reference-containers.*
test-containers: build
	$(DOCKER_CHECK)
	@$(LEFTOVERS_BEFORE)
	@img=$$(containers/reference/build-image.sh) && echo "image $$img" && \
	scan=$$(containers/scanners/build-image.sh) && echo "image $$scan" && \
	export MAILFLOW_REFERENCE_IMAGE=$$img MAILFLOW_SCANNER_IMAGE=$$scan && \
	MAILFLOW_DOCKER_TESTS=1 $(GO) test -count=1 ./targets/containers/ ./targets/dockernet/ ./containers/scanner/ && \
	./bin/mailflow conformance --target containers --progress --report-dir $(REPORT_DIR)
	@$(LEFTOVERS)

## scanner-image: the Debian image of clamd and spamd the containers target's Edges
## scan with (debootstrap + docker import; tagged by a hash of its inputs, rebuilt only
## when those change)
scanner-image:
	$(DOCKER_CHECK)
	@containers/scanners/build-image.sh

## test-mta: every any-mta clause against each MTA of MTAS (Postfix, Exim, OpenSMTPD and
## chasquid from Debian packages, each a profile under profiles/), beside them a live-host
## run (--target smtp://IP:25) against a Postfix container the harness does not manage,
## then the clause x target matrix of every report in $(REPORT_DIR) (text, Markdown, HTML),
## with the in-process reference as the first column.
## Verdicts are the MTAs' own: a FAIL is recorded, not an error; a run that cannot
## complete (an MTA that does not start) is. The MTAs that scan for malware scan with
## clamd in a container of the scanners' image, built first.
test-mta: build clamd spamd mta-images
	$(DOCKER_CHECK)
	@$(LEFTOVERS_BEFORE)
	@mkdir -p $(REPORT_DIR) && ./bin/mailflow conformance --report-dir $(REPORT_DIR) > $(REPORT_DIR)/reference-inprocess.txt \
	  || { cat $(REPORT_DIR)/reference-inprocess.txt; exit 1; }; \
	echo "reference-inprocess (the matrix's first column): $$(grep '^Totals' $(REPORT_DIR)/reference-inprocess.txt)"
	@# The MTAs run side by side, and each runs its specs in parallel, every spec on its
	@# own Docker network: they mostly wait on real-time timers (retries, delay warnings,
	@# expiry), not on the CPU. A line per spec (clause, MTA, verdict, time) shows progress.
	@# Beside them, the Postfix image runs as a host the harness does not manage, configured
	@# from the settings `--target smtp://IP:25` prints (targets/live); its report goes to
	@# $(REPORT_DIR)/live, out of the matrix.
	@scan=$$(containers/scanners/build-image.sh) && echo "image $$scan" && export MAILFLOW_SCANNER_IMAGE=$$scan && \
	pids=""; for m in $(MTAS); do \
	  ./bin/mailflow conformance --target mta:$$m --label-filter any-mta --verdicts-only --procs $(MTA_PROCS) --progress \
	    --report-dir $(REPORT_DIR) > $(REPORT_DIR)/mta-$$m.txt & pids="$$pids $$!"; \
	done; \
	MAILFLOW_DOCKER_TESTS=1 MAILFLOW_BIN=$(CURDIR)/bin/mailflow MAILFLOW_LIVE_REPORT_DIR=$(abspath $(REPORT_DIR))/live \
	  $(GO) test -count=1 -timeout=5m -run='^TestPostfixAsForeignHost$$' -v ./targets/live/ > $(REPORT_DIR)/live-postfix.txt 2>&1 & live=$$!; \
	rc=0; for p in $$pids; do wait $$p || rc=1; done; \
	for m in $(MTAS); do echo "== $$m"; cat $(REPORT_DIR)/mta-$$m.txt; done; \
	echo "== live host (Postfix as a host of its own, smtp://IP:25)"; \
	if wait $$live; then grep -E 'postfix_test.go:[0-9]+: [0-9]+ PASS|^(--- |ok )' $(REPORT_DIR)/live-postfix.txt; \
	else cat $(REPORT_DIR)/live-postfix.txt; rc=1; fi; exit $$rc
	./bin/mailflow conformance report $(REPORT_DIR)/*.json
	@$(LEFTOVERS)

## soak: the crash test with 1,000 SIGKILLs of a real server process (make test runs 50)
soak:
	MAILFLOW_CRASH_KILLS=1000 $(GO) test -count=1 -timeout=60m -run='^TestCrash$$' -v ./cmd/mailflow/ | grep -E 'crash test|FAIL|^ok|never reached'

## bench-postfix: the queue with fsync on, the reference Edge (a server process of its
## own) beside a throw-away Postfix from Debian (installed when missing; needs root), both
## relaying to one sink: msg/s accepted and delivered and p50/p99 from 250 to the sink
## (10 and 100 KB, 1 and 32 clients), resident memory with 100k messages queued, and the
## ratios. BENCH_ARGS goes to `mailflow bench` (e.g. BENCH_ARGS='--queued 20000').
bench-postfix: build
	@bench/postfix.sh $(BENCH_ARGS)

## bench-org: 10,000 messages through generated organisations of 10, 50 and 200 sites,
## whole in this process with fsync on (Edge -> Hubs across sites -> Mailbox stores):
## msgs/s end to end, latency per hop, RSS
ORG_SITES ?= 10,50,200
bench-org: build
	./bin/mailflow bench --org $(ORG_SITES)

## bench-containers: start-up and teardown of a five-container reference topology
bench-containers:
	$(DOCKER_CHECK)
	@img=$$(containers/reference/build-image.sh) && \
	MAILFLOW_REFERENCE_IMAGE=$$img MAILFLOW_DOCKER_TESTS=1 $(GO) test -run='^$$' -bench=StartFive -benchtime=5x ./targets/containers/

## docker-clean: remove containers and networks a killed run left behind, and every
## reference image but the latest
docker-clean:
	-docker rm -f $$(docker ps -aq --filter label=org.mailflow.server) 2>/dev/null
	-docker network rm $$(docker network ls -q --filter label=org.mailflow.network) 2>/dev/null
	-docker images --format '{{.Repository}}:{{.Tag}}' mailflow/reference | grep -v ':latest$$' | xargs -r docker rmi 2>/dev/null

## mta-images: the Debian image of each MTA of MTAS, with the packages its profile lists
## (debootstrap + docker import; tagged by a hash of their inputs, rebuilt only when those
## change)
mta-images:
	$(DOCKER_CHECK)
	@# Side by side: each build mostly waits on the mirror and dpkg, and a new machine
	@# builds every one; each prints its image, or why it failed.
	@mkdir -p $(REPORT_DIR) && pids=""; for m in $(MTAS); do \
	  containers/mta/build-image.sh $$m > $(REPORT_DIR)/.image-$$m.log 2>&1 & pids="$$pids $$m:$$!"; \
	done; rc=0; for p in $$pids; do \
	  if wait $${p#*:}; then cat $(REPORT_DIR)/.image-$${p%%:*}.log; \
	  else echo "make mta-images: $${p%%:*}:"; cat $(REPORT_DIR)/.image-$${p%%:*}.log; rc=1; fi; \
	  rm -f $(REPORT_DIR)/.image-$${p%%:*}.log; \
	done; exit $$rc

tools: $(GINKGO) $(STATICCHECK) clamd spamd

## clamd: ClamAV's daemon for the antivirus specs (FILTER-009, FILTER-010): found, or
## installed from Debian's clamav-daemon as root (one line says so); without it those
## specs are N/A in-process. No freshclam: the specs bring their own signature.
clamd:
	@scripts/install-clamd.sh

## spamd: SpamAssassin's daemon for the content filter specs (FILTER-013): found, or
## installed from Debian's spamd as root (one line says so); without it FILTER-013 is
## N/A in-process. No sa-update: the specs score with the rules the package ships.
spamd:
	@scripts/install-spamd.sh

$(GINKGO):
	$(GO) install github.com/onsi/ginkgo/v2/ginkgo@$(GINKGO_VERSION)

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

clean:
	rm -rf bin $(REPORT_DIR)
