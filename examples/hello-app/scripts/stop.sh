#!/bin/bash
# Stop the service gracefully; a first install has nothing to stop.
set -euo pipefail
systemctl stop hello-app.service 2>/dev/null || true
