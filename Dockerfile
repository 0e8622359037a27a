# pollreload container image.
#
# The build stage downloads modules before it copies the source, so a source
# edit reuses the module layer. The final stage is scratch: one static binary,
# the CA bundle (for an https RELOAD_URL) and a non-root user; nothing else to
# patch or scan.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION and COMMIT are stamped into the binary (pollreload --version and the
# pollreload_build_info metric); .ci/image.sh passes them from git.
ARG VERSION=dev
ARG COMMIT=unknown
# The cache mount keeps compiled packages between builds on the same machine;
# it never ends up in an image.
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/pollreload .

FROM scratch
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="pollreload" \
      org.opencontainers.image.description="Polls configuration directories and reloads the application when their content changes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/pollreload /pollreload
# 65532 is the conventional "nonroot" UID of distroless images. In a pod,
# set runAsUser to the application's UID instead: a signal only reaches a
# process of the same UID (see docs/kubernetes.md).
USER 65532:65532
EXPOSE 9533
ENTRYPOINT ["/pollreload"]
