#!/usr/bin/env bash
# Creates examples/python/.venv with the pinned grpcio, grpcio-tools and protobuf, then
# generates the kpi.v1 Python stubs from proto/ into examples/python/gen/.
# Needs only python3 (3.11+, with venv and pip) and access to PyPI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
venv="$here/.venv"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv" >&2
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

# Generate into a scratch directory and swap it in, so a failed run leaves no half tree.
tmp="$(mktemp -d "$here/.gen.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# grpc_tools bundles google/protobuf/*.proto and adds them to the include path itself.
"$venv/bin/python" -m grpc_tools.protoc \
    --proto_path="$root/proto" \
    --python_out="$tmp" \
    --pyi_out="$tmp" \
    --grpc_python_out="$tmp" \
    "$root"/proto/kpi/v1/*.proto
rm -rf "$here/gen"
chmod 755 "$tmp"
mv "$tmp" "$here/gen"
trap - EXIT
echo "stubs generated in $here/gen" >&2
