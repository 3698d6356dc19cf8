#!/usr/bin/env bash
# Regenerates the committed Swift (and C) code for the .proto files under proto/.
# Needs Debian's protoc (protobuf-compiler), protoc-gen-swift from swift-protobuf 1.39.0 and
# protoc-gen-grpc-swift-2 from grpc-swift-protobuf 2.4.1:
#   git clone --branch 1.39.0 https://github.com/apple/swift-protobuf /tmp/swift-protobuf
#   (cd /tmp/swift-protobuf && swift build -c release --product protoc-gen-swift)
#   git clone --branch 2.4.1 https://github.com/grpc/grpc-swift-protobuf /tmp/grpc-swift-protobuf
#   (cd /tmp/grpc-swift-protobuf && swift build -c release --product protoc-gen-grpc-swift-2)
# Without network, build the plugin from the copy SwiftPM already fetched (after any `swift build`):
#   cp -r .build/checkouts/swift-protobuf /tmp/swift-protobuf && (cd /tmp/swift-protobuf && swift build -c release --product protoc-gen-swift)
# The C client's code is regenerated with `make -C clients/c generate` (protoc-c).
# Usage: scripts/generate-protos.sh [path/to/protoc-gen-swift [path/to/protoc-gen-grpc-swift-2]]
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=${1:-${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || echo /tmp/swift-protobuf/.build/release/protoc-gen-swift)}}
grpc_plugin=${2:-${PROTOC_GEN_GRPC_SWIFT:-$(command -v protoc-gen-grpc-swift-2 || echo /tmp/grpc-swift-protobuf/.build/release/protoc-gen-grpc-swift-2)}}
[ -x "$plugin" ] || { echo "protoc-gen-swift not found (give its path as the first argument)" >&2; exit 1; }
[ -x "$grpc_plugin" ] || { echo "protoc-gen-grpc-swift-2 not found (give its path as the second argument)" >&2; exit 1; }

# ONNX schema (onnx 1.23.2, Apache-2.0): parsed by the inference engine.
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=proto/onnx \
  --swift_opt=Visibility=Internal --swift_out=Sources/DoodleEngine/Generated onnx.proto
echo "generated Sources/DoodleEngine/Generated/onnx.pb.swift"

# doodled's protocol and its capture records: Swift messages for the wire module.
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=proto \
  --swift_opt=Visibility=Public --swift_out=Sources/DoodleWire/Generated doodle/v1/doodle.proto \
  doodle/capture/v1/capture.proto
echo "generated Sources/DoodleWire/Generated/doodle/{v1/doodle,capture/v1/capture}.pb.swift"

# gRPC stubs for the Classifier service (messages come from DoodleWire) and the standard health service.
protoc --plugin=protoc-gen-grpc-swift-2="$grpc_plugin" --proto_path=proto \
  --grpc-swift-2_opt=Visibility=Public,ExtraModuleImports=DoodleWire --grpc-swift-2_out=Sources/DoodleGRPC/Generated \
  doodle/v1/doodle.proto
protoc --plugin=protoc-gen-swift="$plugin" --plugin=protoc-gen-grpc-swift-2="$grpc_plugin" --proto_path=proto \
  --swift_opt=Visibility=Public --swift_out=Sources/DoodleGRPC/Generated \
  --grpc-swift-2_opt=Visibility=Public --grpc-swift-2_out=Sources/DoodleGRPC/Generated grpc/health/v1/health.proto
echo "generated Sources/DoodleGRPC/Generated (doodle.grpc.swift, health.pb.swift, health.grpc.swift)"
