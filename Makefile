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

.PHONY: all run test unit suites bench lint tools build clean mta-images

all: build

build:
	$(GO) build ./...
	CGO_ENABLED=0 $(GO) build -o bin/mailflow ./cmd/mailflow

## run: the conformance suite against the in-process reference topology, with the report
run: build
	./bin/mailflow conformance --report-dir $(REPORT_DIR)

## test: unit tests, then the Ginkgo suites in parallel
test: unit suites

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /suites/)

suites: tools
	$(GINKGO) -p --procs=$(PROCS) --timeout=8m --label-filter='$(LABELS)' ./suites/...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## mta-images: Debian images of Postfix, Exim and OpenSMTPD (debootstrap + docker import;
## tagged by a hash of their inputs, rebuilt only when those change)
mta-images:
	@for m in postfix exim opensmtpd; do containers/mta/build-image.sh $$m || exit 1; done

tools: $(GINKGO) $(STATICCHECK)

$(GINKGO):
	$(GO) install github.com/onsi/ginkgo/v2/ginkgo@$(GINKGO_VERSION)

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

clean:
	rm -rf bin $(REPORT_DIR)
