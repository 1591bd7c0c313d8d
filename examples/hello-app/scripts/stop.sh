#!/bin/bash
# Stop the service gracefully; a first install has nothing to stop.
set -euo pipefail
systemctl stop "${APPLICATION_NAME:?set by the CodeDeploy agent for every hook}.service" 2>/dev/null || true
