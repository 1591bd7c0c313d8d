#!/bin/bash
set -euo pipefail
cat > /etc/systemd/system/hello-app.service <<'UNIT'
[Unit]
Description=hello-app
After=network-online.target
[Service]
ExecStart=/usr/bin/python3 /opt/hello-app/server.py
Restart=on-failure
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now hello-app.service
