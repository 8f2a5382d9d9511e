# The Chokepoint image: both binaries (chokepoint, agent-node) and the scenarios, on Debian slim.
#   docker build -t chokepoint:latest .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin chokepoint --bin agent-node

FROM debian:bookworm-slim
RUN useradd --system --create-home chokepoint
COPY --from=build /src/target/release/chokepoint /src/target/release/agent-node /usr/local/bin/
COPY scenarios /opt/chokepoint/scenarios
USER chokepoint
WORKDIR /home/chokepoint
EXPOSE 7400 7401
ENTRYPOINT ["chokepoint"]
