# Multi-stage build of a small static image: CGO off, non-root, zone data
# built into the binary (time/tzdata), version stamped through ldflags.
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) -t alertmanager-feishu .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# .dockerignore keeps the context to the sources the binary is built from.
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=main \
        -X github.com/prometheus/common/version.BuildUser=docker" \
      -o /out/alertmanager-feishu . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/alertmanager-feishu /bin/alertmanager-feishu
# The state file lives here; mount a volume so chains survive a new pod.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
EXPOSE 9098
VOLUME ["/data"]
ENTRYPOINT ["/bin/alertmanager-feishu"]
CMD ["--config.file=/etc/alertmanager-feishu/routing.yaml"]
