# Multi-stage build of the single-file binary (make publish), run as a non-root user.
# Not built on the project's CI machines (no Docker engine there); see README.md.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish Keystone -c Release -r linux-x64 --self-contained \
      -p:PublishSingleFile=true -p:PublishReadyToRun=true -p:IncludeNativeLibrariesForSelfExtract=true -o /out

FROM mcr.microsoft.com/dotnet/runtime-deps:10.0
RUN useradd --system --uid 10001 --home-dir /app keystone
WORKDIR /app
COPY --from=build /out/keystone /app/keystone
COPY configs/ /app/configs/
COPY scripts/ /app/scripts/
USER keystone
# A 4 MB gen0 budget instead of one sized from the CPU cache: 8-10 MB less RSS under load, same CPU
# (docs/BENCHMARKS.md). The runtime reads this knob only from the environment.
ENV DOTNET_GCgen0size=0x400000
EXPOSE 8080
VOLUME ["/app/configs", "/app/scripts"]
HEALTHCHECK --interval=10s --timeout=2s --retries=3 CMD ["/app/keystone", "validate", "--config", "/app/configs/keystone.yaml"]
ENTRYPOINT ["/app/keystone"]
CMD ["serve", "--config", "/app/configs/keystone.yaml"]
