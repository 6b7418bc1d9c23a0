#!/usr/bin/env bash
# Azurite's Table service (the Azure Storage emulator, from npm) for the ledger: loopback only, no
# telemetry. Runs in the foreground until Ctrl-C; prints "ready" once it accepts connections.
#
#   bash scripts/azurite.sh                     # 127.0.0.1:10002, data in memory (gone on exit)
#   bash scripts/azurite.sh --location .azurite # keep the data in that folder
#   bash scripts/azurite.sh --port 10012        # another port (or AZURITE_TABLE_PORT=10012)
#
# Port 10002 is where the ledger looks when neither HAYMAKER_LEDGER_CONNECTION_STRING nor
# HAYMAKER_LEDGER_ENDPOINT is set. For another port, use the development account's connection string:
#   DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=<Azurite's well-known key>;
#   TableEndpoint=http://127.0.0.1:<port>/devstoreaccount1
set -euo pipefail
cd "$(dirname "$0")/.."

port=${AZURITE_TABLE_PORT:-10002}
storage=(--inMemoryPersistence)
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=${2:?--port needs a number}; shift 2 ;;
    --location) mkdir -p "${2:?--location needs a folder}"; storage=(--location "$2"); shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1: use --port N or --location DIR" >&2; exit 1 ;;
  esac
done

azurite=node_modules/.bin/azurite-table
if [ ! -x "$azurite" ]; then
  echo "Azurite is not installed: run 'npm ci' in $(pwd) (it installs $azurite from package-lock.json)" >&2
  exit 1
fi

# --skipApiVersionCheck: a newer azure-data-tables may send an API version this Azurite predates.
"$azurite" --tableHost 127.0.0.1 --tablePort "$port" "${storage[@]}" \
  --disableTelemetry --skipApiVersionCheck --silent &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 200); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "ready: Azurite Table service on http://127.0.0.1:$port/devstoreaccount1"
    wait "$pid"
    exit $?
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "Azurite exited before accepting connections (is port $port in use?)" >&2
    exit 1
  fi
  sleep 0.1
done
echo "Azurite did not accept connections on 127.0.0.1:$port within 20 s" >&2
exit 1
