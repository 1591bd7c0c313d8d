#!/bin/bash
# The application is the systemd unit named after it, its logs under /var/log/<application>:
# what the platform's drain stops and ships (fleet/README.md, "What an application provides").
# CodeDeploy's agent gives each hook APPLICATION_NAME, the fleet's application.
set -euo pipefail
APP="${APPLICATION_NAME:?set by the CodeDeploy agent for every hook}"
mkdir -p "/var/log/$APP"
cat > "/etc/systemd/system/$APP.service" <<UNIT
[Unit]
Description=$APP (hello-app)
After=network-online.target
[Service]
ExecStart=/usr/bin/python3 /opt/hello-app/server.py
StandardOutput=append:/var/log/$APP/server.log
StandardError=append:/var/log/$APP/server.log
Restart=on-failure
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now "$APP.service"
