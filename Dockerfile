# pollreload container image, for linux/amd64, arm64, arm/v7, ppc64le, s390x
# and riscv64:
#
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7,linux/ppc64le,linux/s390x,linux/riscv64 .
#
# The build stage always runs on the build machine's platform and
# cross-compiles for the target (TARGETOS/TARGETARCH), so no emulation is
# needed. It downloads modules before it copies the source, so a source edit
# reuses the module layer. The final stage is scratch: one static binary, the
# CA bundle (for an https RELOAD_URL), the licence and a non-root user; nothing
# else to patch or scan.
#
# release/build.sh builds the release images from this file with buildah; it
# passes the build arguments below and a fixed --timestamp, so the same commit
# gives the same image digest (see "Reproducible builds" in the README).

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION, COMMIT and COMMIT_DATE are stamped into the binary (pollreload
# --version and the pollreload_build_info metric).
ARG VERSION=dev
ARG COMMIT=unknown
ARG COMMIT_DATE=unknown
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
# Every flag that decides the binary's bytes is fixed here, and matches
# release/build.sh: no paths (-trimpath), no VCS stamp (-buildvcs=false, the
# commit comes in COMMIT), no build ID, the baseline instruction sets (each
# GO<ARCH> variable counts only for its own architecture; linux/arm's comes
# from the platform's variant, v7 when none is given).
# The cache mount keeps compiled packages between builds on the same machine;
# it never ends up in an image.
RUN --mount=type=cache,target=/root/.cache/go-build \
    variant=${TARGETVARIANT:-v7}; \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    GOAMD64=v1 GOARM64=v8.0 GOARM=${variant#v} GOPPC64=power8 GORISCV64=rva20u64 \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.commitDate=${COMMIT_DATE}" \
      -o /out/pollreload .

FROM scratch
ARG VERSION=dev
ARG COMMIT=unknown
ARG CREATED
LABEL org.opencontainers.image.title="pollreload" \
      org.opencontainers.image.description="Polls configuration directories and reloads the application when their content changes" \
      org.opencontainers.image.url="https://github.com/pollreload/pollreload" \
      org.opencontainers.image.source="https://github.com/pollreload/pollreload" \
      org.opencontainers.image.documentation="https://github.com/pollreload/pollreload#readme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY LICENSE /LICENSE
COPY --from=build /out/pollreload /pollreload
# 65532 is the conventional "nonroot" UID of distroless images. In a pod,
# set runAsUser to the application's UID instead: a signal only reaches a
# process of the same UID (see "Same UID" in the README).
USER 65532:65532
EXPOSE 9533
ENTRYPOINT ["/pollreload"]
