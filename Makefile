# Postern: make test runs everything CI runs (after .ci/run's checks).
GO ?= go
# The version stamped into the binary (postern --version): the nearest tag and
# commit, "-dirty" for uncommitted changes.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/postern/postern/internal/buildinfo.Version=$(VERSION)

.PHONY: test deps vet build demo fmt-check

# The end-to-end tests need real third-party clients and PostgreSQL
# (postgres://postgres@127.0.0.1:5432/test, see README.md).
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...
	# The go-imap Postern carries with its patches (third_party/go-imap/POSTERN.md).
	cd third_party/go-imap && $(GO) test -count=1 ./...

deps:
	scripts/test-deps.sh

vet:
	$(GO) vet ./...

build:
	$(GO) build -buildvcs=true -ldflags "$(LDFLAGS)" -o postern ./cmd/postern

demo:
	$(GO) run ./cmd/postern demo

# Lists unformatted Go files and fails when there are any.
fmt-check:
	@files=$$(git ls-files -co --exclude-standard '*.go' | xargs -r gofmt -l); \
	if [ -n "$$files" ]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi
