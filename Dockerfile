# syntax=docker/dockerfile:1
# The Postern image: one static binary on distroless (CA certificates, no
# shell), running as the unprivileged user nonroot (UID 65532), its data in
# the /data volume. Build: make image, or
#   docker build --build-arg VERSION=$(git describe --tags --always) -t postern .
# Running it: docs/install.md, compose.yaml.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY third_party/ third_party/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# The version postern --version prints (the Makefile's VERSION).
ARG VERSION=devel
# Static (no cgo: SQLite is pure Go), with the time zone database built in
# (the cut-off date is in Asia/Tokyo; distroless static has no zoneinfo).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags timetzdata -buildvcs=false \
        -ldflags "-s -w -X github.com/postern/postern/internal/buildinfo.Version=${VERSION}" \
        -o /out/postern ./cmd/postern \
    && mkdir /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/postern /postern
# An empty /data owned by nonroot: a new named volume takes its owner and mode.
COPY --from=build --chown=65532:65532 --chmod=0700 /out/data /data
USER 65532:65532
ENV POSTERN_DATA=/data
VOLUME ["/data"]
# web (plain HTTP, for a TLS proxy), MX, IMAP, IMAPS, POP3, POP3S,
# submission, submissions. The mail ports are the standard ones inside the
# container too: autoconfig and the setup pages announce the ports Postern
# listens on. Docker and Podman let an unprivileged user bind them.
EXPOSE 8080 25 143 993 110 995 587 465
ENTRYPOINT ["/postern"]
CMD ["serve", "--web-addr", ":8080", "--smtp-addr", ":25", "--imap-addr", ":143", "--imaps-addr", ":993", "--pop3-addr", ":110", "--pop3s-addr", ":995", "--submission-addr", ":587", "--submissions-addr", ":465"]
