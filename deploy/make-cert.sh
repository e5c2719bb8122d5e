#!/bin/sh
# A self-signed certificate for nginx, made once at the first start (docker-compose.yml, service
# "certs") into the certs volume: no private key is ever committed. Replace cti.crt and cti.key in
# that volume with a real certificate for production. CTI_TLS_NAME names the host (localhost).
set -eu
dir=${CERT_DIR:-/certs}
if [ -s "$dir/cti.key" ] && [ -s "$dir/cti.crt" ]; then
    exit 0
fi
command -v openssl >/dev/null 2>&1 || apk add --no-cache openssl >/dev/null
name=${CTI_TLS_NAME:-localhost}
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$name" \
    -addext "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/cti.key" -out "$dir/cti.crt" 2>/dev/null
chmod 644 "$dir/cti.crt"
echo "made a self-signed certificate for $name in $dir"
