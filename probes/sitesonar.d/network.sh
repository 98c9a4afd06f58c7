#!/bin/sh
# Site Sonar probe "network": can the node reach a host over IPv4 and over IPv6 (a TCP connection
# to SITESONAR_NETWORK_HOST, default alice-jcentral.cern.ch, port SITESONAR_NETWORK_PORT, default
# 8097: JAliEn central services)? Each family: resolve (getent), then connect within 5 s with
# bash's /dev/tcp or curl.
. "$(dirname "$0")/lib/json.sh"

host=${SITESONAR_NETWORK_HOST:-alice-jcentral.cern.ch}
port=${SITESONAR_NETWORK_PORT:-8097}

resolve() { # family host -> first address of that family
  limit 5 getent "ahostsv$1" "$2" 2>/dev/null | awk '{ print $1 }' | grep -v '^::ffff:' | {
    if [ "$1" = 6 ]; then grep ':'; else grep -v ':'; fi
  } | head -n 1
}

connect() { # address port -> exit 0 when a TCP connection is made
  if command -v bash >/dev/null 2>&1; then
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
  elif command -v curl >/dev/null 2>&1; then
    case "$1" in *:*) u="[$1]" ;; *) u=$1 ;; esac
    ip=$(curl -s -o /dev/null --connect-timeout 5 -m 2 -w '%{remote_ip}' "telnet://$u:$2" </dev/null 2>/dev/null)
    [ -n "$ip" ]
  else
    return 2
  fi
}

family() {
  addr=$(resolve "$1" "$host")
  if [ -z "$addr" ]; then
    jobj "$(jpair resolved false)" "$(jpair reached false)" "$(jpair error "$(jstr "no IPv$1 address for $host")")"
    return
  fi
  t0=$(date +%s)
  if connect "$addr" "$port"; then
    jobj "$(jpair resolved true)" "$(jpair address "$(jstr "$addr")")" "$(jpair reached true)"
  else
    jobj "$(jpair resolved true)" "$(jpair address "$(jstr "$addr")")" "$(jpair reached false)" \
      "$(jpair error "$(jstr "no TCP connection to $addr port $port within $(( $(date +%s) - t0 + 1 )) s")")"
  fi
}

jobj "$(jpair host "$(jstr "$host")")" "$(jpair port "$(jnum "$port")")" "$(jpair ipv4 "$(family 4)")" "$(jpair ipv6 "$(family 6)")"
echo
