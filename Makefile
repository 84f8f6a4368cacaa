# Postern: make test runs everything CI runs (after .ci/run's checks).
GO ?= go
# The version stamped into the binary (postern --version): the nearest tag and
# commit, "-dirty" for uncommitted changes.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/postern/postern/internal/buildinfo.Version=$(VERSION)

.PHONY: test deps vet build demo fmt-check release image

# The end-to-end tests need real third-party clients and PostgreSQL
# (postgres://postgres@127.0.0.1:5432/test, see README.md).
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...
	# The IMAP server's tests again with their servers on PostgreSQL.
	POSTERN_TEST_IMAP_ENGINE=postgres $(GO) test -count=1 ./internal/imapserver
	# The go-imap Postern carries with its patches (third_party/go-imap/POSTERN.md).
	cd third_party/go-imap && $(GO) test -count=1 ./...

deps:
	scripts/test-deps.sh

vet:
	$(GO) vet ./...

build:
	$(GO) build -buildvcs=true -ldflags "$(LDFLAGS)" -o postern ./cmd/postern

# Static Linux binaries for release (docs/install.md): dist/postern-VERSION-linux-ARCH,
# a .tar.gz of each with the files an installation needs, and SHA256SUMS.
# No cgo (SQLite is pure Go), the time zone database built in, no local paths.
RELEASE_ARCHES := amd64 arm64
RELEASE_FILES := LICENSE README.md CHANGELOG.md docs/install.md \
	packaging/systemd/postern.service packaging/systemd/postern.sysusers packaging/systemd/postern.env
# The archives' file times: the commit's, so that one commit gives the same archives.
RELEASE_MTIME := $(shell git log -1 --format=%ct 2>/dev/null || date +%s)

release:
	rm -rf dist
	mkdir -p dist
	set -e; for arch in $(RELEASE_ARCHES); do \
		name=postern-$(VERSION)-linux-$$arch; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -tags timetzdata -buildvcs=true \
			-ldflags "-s -w $(LDFLAGS)" -o dist/$$name ./cmd/postern; \
		mkdir dist/$$name.d; \
		cp dist/$$name dist/$$name.d/postern; \
		cp $(RELEASE_FILES) dist/$$name.d/; \
		tar -C dist/$$name.d --transform "s,^\.,$$name," --sort=name --owner=0 --group=0 --numeric-owner \
			--mtime=@$(RELEASE_MTIME) -cf - . | gzip -n > dist/$$name.tar.gz; \
		rm -r dist/$$name.d; \
	done
	cd dist && sha256sum postern-* > SHA256SUMS
	@ls -l dist

# The container image (Dockerfile), stamped like make build.
image:
	docker build --build-arg VERSION=$(VERSION) -t postern:$(VERSION) .

demo:
	$(GO) run ./cmd/postern demo

# Lists unformatted Go files and fails when there are any.
fmt-check:
	@files=$$(git ls-files -co --exclude-standard '*.go' | xargs -r gofmt -l); \
	if [ -n "$$files" ]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi
