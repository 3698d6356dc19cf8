#!/usr/bin/env bash
# Regenerates the committed Swift (and C) code for the .proto files under proto/.
# Needs Debian's protoc (protobuf-compiler) and protoc-gen-swift from swift-protobuf 1.39.0:
#   git clone --branch 1.39.0 https://github.com/apple/swift-protobuf /tmp/swift-protobuf
#   (cd /tmp/swift-protobuf && swift build -c release --product protoc-gen-swift)
# Usage: scripts/generate-protos.sh [path/to/protoc-gen-swift]
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=${1:-${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || echo /tmp/swift-protobuf/.build/release/protoc-gen-swift)}}
[ -x "$plugin" ] || { echo "protoc-gen-swift not found (give its path as the first argument)" >&2; exit 1; }

# ONNX schema (onnx 1.23.2, Apache-2.0): parsed by the inference engine.
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=proto/onnx \
  --swift_opt=Visibility=Internal --swift_out=Sources/DoodleEngine/Generated onnx.proto
echo "generated Sources/DoodleEngine/Generated/onnx.pb.swift"

# doodled's protocol: Swift messages for the wire module.
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=proto \
  --swift_opt=Visibility=Public --swift_out=Sources/DoodleWire/Generated doodle/v1/doodle.proto
echo "generated Sources/DoodleWire/Generated/doodle/v1/doodle.pb.swift"
