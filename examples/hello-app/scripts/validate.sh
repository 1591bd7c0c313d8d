#!/bin/bash
# Healthy when the service answers on its port within 60 seconds.
set -euo pipefail
for _ in $(seq 1 30); do
  if curl -fsS http://127.0.0.1:8080/ >/dev/null; then exit 0; fi
  sleep 2
done
exit 1
