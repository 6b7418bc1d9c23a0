#!/usr/bin/env bash
# Azurite (the Azure Storage emulator, from npm): its Table service for the ledger and its Blob service
# for the reports container. Loopback only, no telemetry. Runs in the foreground until Ctrl-C; prints
# "ready" once both accept connections.
#
#   bash scripts/azurite.sh                     # tables on 127.0.0.1:10002, blobs on :10000, data in memory
#   bash scripts/azurite.sh --location .azurite # keep the data in that folder
#   bash scripts/azurite.sh --port 10012        # another table port (or AZURITE_TABLE_PORT=10012)
#   bash scripts/azurite.sh --blob-port 10010   # another blob port (or AZURITE_BLOB_PORT=10010)
#
# These ports are where the ledger and `haymaker truth` look when no connection string or endpoint is
# set. For others, use the development account's connection string:
#   DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=<Azurite's well-known key>;
#   TableEndpoint=http://127.0.0.1:<port>/devstoreaccount1;BlobEndpoint=http://127.0.0.1:<blob port>/devstoreaccount1
set -euo pipefail
cd "$(dirname "$0")/.."

port=${AZURITE_TABLE_PORT:-10002}
blob_port=${AZURITE_BLOB_PORT:-10000}
storage=(--inMemoryPersistence)
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=${2:?--port needs a number}; shift 2 ;;
    --blob-port) blob_port=${2:?--blob-port needs a number}; shift 2 ;;
    --location) mkdir -p "${2:?--location needs a folder}"; storage=(--location "$2"); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1: use --port N, --blob-port N or --location DIR" >&2; exit 1 ;;
  esac
done

bin=node_modules/.bin
if [ ! -x "$bin/azurite-table" ] || [ ! -x "$bin/azurite-blob" ]; then
  echo "Azurite is not installed: run 'npm ci' in $(pwd) (it installs $bin/azurite-table and azurite-blob)" >&2
  exit 1
fi

# --skipApiVersionCheck: a newer azure-data-tables or azure-storage-blob may send an API version this
# Azurite predates.
"$bin/azurite-table" --tableHost 127.0.0.1 --tablePort "$port" "${storage[@]}" \
  --disableTelemetry --skipApiVersionCheck --silent &
table_pid=$!
"$bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$blob_port" "${storage[@]}" \
  --disableTelemetry --skipApiVersionCheck --silent &
blob_pid=$!
trap 'kill "$table_pid" "$blob_pid" 2>/dev/null || true' EXIT INT TERM

accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 200); do
  if accepts "$port" && accepts "$blob_port"; then
    echo "ready: Azurite tables on http://127.0.0.1:$port/devstoreaccount1, blobs on http://127.0.0.1:$blob_port/devstoreaccount1"
    wait -n "$table_pid" "$blob_pid"
    exit $?
  fi
  for pid in "$table_pid" "$blob_pid"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "Azurite exited before accepting connections (is port $port or $blob_port in use?)" >&2
      exit 1
    fi
  done
  sleep 0.1
done
echo "Azurite did not accept connections on 127.0.0.1:$port and :$blob_port within 20 s" >&2
exit 1
