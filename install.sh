#!/usr/bin/env bash
# Installs dockmon-agent as a systemd service on a Docker host: downloads the static binary for this
# machine from a GitHub release, verifies it against the release's SHA256SUMS, writes
# /etc/dockmon-agent/agent.env (0600) and a hardened unit, then enables and starts it.
# The binary lives in /usr/local/lib/dockmon-agent/ (owned by the agent's user, so DockMon's "Update
# agent" can replace it: the agent's native self-update), with /usr/local/bin/dockmon-agent a link to it.
#
#   curl -fsSL https://github.com/dockmon-agent/dockmon-agent/releases/latest/download/install.sh \
#     | sudo DOCKMON_URL=https://dockmon.example.com REGISTRATION_TOKEN=... bash
#
# Run with --help for every setting.
set -euo pipefail

REPO_URL="https://github.com/dockmon-agent/dockmon-agent"

usage() {
    cat <<'EOF'
Usage: install.sh [--no-start] [--uninstall [--purge]] [--help]
Settings come from the environment (sudo VAR=value ... bash install.sh):

  DOCKMON_URL                 DockMon server URL (http://, https://, ws:// or wss://); required on a first
                              install, optional on an upgrade (the existing agent.env is kept)
  REGISTRATION_TOKEN          registration token from DockMon's "Add agent" dialog; required with DOCKMON_URL
  TZ                          time zone for the agent (default: /etc/timezone, else UTC)
  INSECURE_SKIP_VERIFY        true to skip TLS certificate checks (self-signed DockMon); default false
  AGENT_NAME                  display name in DockMon (no control characters, quotes or backslashes)
  FORCE_UNIQUE_REGISTRATION   true to register even if the engine ID is known (cloned VMs); needs AGENT_NAME
  DATA_PATH                   agent state folder (default: /var/lib/dockmon-agent)
  DOCKMON_AGENT_VERSION       release to install, e.g. 0.2.0 (default: the latest release)
  DOCKMON_AGENT_BASE_URL      folder holding dockmon-agent-linux-<arch> and SHA256SUMS (default: the GitHub
                              release download URL for DOCKMON_AGENT_VERSION)
  DOCKMON_AGENT_ARCH          amd64, arm64 or armv7 (default: from uname -m)
  DOCKMON_AGENT_USER          root to run the agent as root (default: a system user dockmon-agent in the
                              Docker socket's group)
  SELF_UPDATE_URL             folder the agent's self-update ("Update agent" in DockMon) downloads from,
                              {version} standing for the version asked for (default: this project's
                              GitHub releases); written to agent.env
  DESTDIR                     install under this folder instead of /, for packaging and tests: implies
                              --no-start and creates no user

Options:
  --no-start     install and enable nothing in systemd: write the files only (no systemctl calls)
  --uninstall    stop and disable the service, remove the unit and the binaries; keep agent.env and DATA_PATH
  --purge        with --uninstall: also remove /etc/dockmon-agent and DATA_PATH (the agent's identity)
  -h, --help     show this help

The binary is refused unless SHA256SUMS from the same place lists it with a matching checksum.
EOF
}

die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'install.sh: %s\n' "$*"; }

no_start=0
uninstall=0
purge=0
while [ $# -gt 0 ]; do
    case "$1" in
        --no-start) no_start=1 ;;
        --uninstall) uninstall=1 ;;
        --purge) purge=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

destdir="${DESTDIR:-}"
destdir="${destdir%/}"
if [ -n "$destdir" ]; then
    no_start=1
    case "$destdir" in /*) ;; *) die "DESTDIR must be an absolute path" ;; esac
elif [ "$(id -u)" != 0 ]; then
    die "run as root (sudo), or set DESTDIR for a staged install"
fi

bin_path="/usr/local/bin/dockmon-agent"
# The real binary, in a folder of its own that the agent's user may write (self-update stages
# dockmon-agent.new there and keeps the previous binary as dockmon-agent.old).
lib_dir="/usr/local/lib/dockmon-agent"
real_bin="$lib_dir/dockmon-agent"
env_dir="/etc/dockmon-agent"
env_file="$env_dir/agent.env"
unit_path="/etc/systemd/system/dockmon-agent.service"
data_path="${DATA_PATH:-/var/lib/dockmon-agent}"
service_user="${DOCKMON_AGENT_USER:-dockmon-agent}"

have_systemctl() { [ "$no_start" = 0 ] && command -v systemctl >/dev/null 2>&1; }

# ParseBool as the agent reads it (DockMon spec 1.1): prints true, false, or fails.
parse_bool() {
    case "$1" in
        1 | t | T | TRUE | true | True) echo true ;;
        0 | f | F | FALSE | false | False) echo false ;;
        *) return 1 ;;
    esac
}

# Values go into a systemd EnvironmentFile inside double quotes: refuse what would break out of them.
check_value() { # check_value NAME VALUE
    local name="$1" value="$2" LC_ALL=C
    if [[ "$value" == *[[:cntrl:]]* ]]; then
        die "$name must not contain control characters"
    fi
    case "$value" in
        *'"'* | *"'"* | *\\*) die "$name must not contain quotes or backslashes" ;;
    esac
}

# DATA_PATH becomes ReadWritePaths= and, with --purge, is removed: a plain absolute path of its own.
check_data_path() {
    case "$1" in
        /*) ;;
        *) die "DATA_PATH must be an absolute path" ;;
    esac
    case "$1" in
        *[!A-Za-z0-9_./-]* | *//* | */./* | */../* | */. | */.. | */)
            die "DATA_PATH '$1' must be a plain absolute path" ;;
        /bin | /boot | /dev | /etc | /home | /lib | /lib64 | /media | /mnt | /opt | /proc | /root | /run \
            | /sbin | /srv | /sys | /tmp | /usr | /usr/local | /var | /var/lib)
            die "DATA_PATH '$1' is a system folder: use a folder of its own (default /var/lib/dockmon-agent)" ;;
    esac
}

# DATA_PATH from an existing agent.env (read, never sourced: values are not shell).
env_data_path() {
    [ -f "$destdir$env_file" ] || return 0
    sed -n 's/^DATA_PATH="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$destdir$env_file" | tail -n 1
}

if [ "$uninstall" = 1 ]; then
    if have_systemctl; then
        systemctl disable --now dockmon-agent.service 2>/dev/null || true
    fi
    rm -f "$destdir$unit_path" "$destdir$bin_path"
    rm -rf "${destdir:?}$lib_dir"
    if have_systemctl; then systemctl daemon-reload; fi
    if [ "$purge" = 1 ]; then
        old_data=$(env_data_path)
        if [ -n "$old_data" ]; then data_path="$old_data"; fi
        check_data_path "$data_path"
        rm -rf "${destdir:?}$env_dir" "${destdir:?}$data_path"
        if [ -z "$destdir" ] && id dockmon-agent >/dev/null 2>&1; then
            userdel dockmon-agent 2>/dev/null || true
        fi
        say "removed dockmon-agent, its settings and its data ($data_path)"
    else
        say "removed the dockmon-agent service and binary; kept $env_file and $data_path"
    fi
    exit 0
fi

# --- settings ---------------------------------------------------------------------------------------
url="${DOCKMON_URL:-}"
token="${REGISTRATION_TOKEN:-}"
keep_env=0
if [ -z "$url" ] && [ -z "$token" ] && [ -f "$destdir$env_file" ]; then
    keep_env=1
    say "upgrade: keeping the settings in $env_file"
else
    [ -n "$url" ] || die "DOCKMON_URL is required (e.g. DOCKMON_URL=https://dockmon.example.com)"
    [ -n "$token" ] || die "REGISTRATION_TOKEN is required (DockMon: Hosts > Add agent)"
    case "$url" in
        http://?* | https://?* | ws://?* | wss://?*) ;;
        *) die "DOCKMON_URL must start with http://, https://, ws:// or wss://" ;;
    esac
    case "$url$token" in
        *[[:space:]]*) die "DOCKMON_URL and REGISTRATION_TOKEN must not contain spaces" ;;
    esac
    check_value DOCKMON_URL "$url"
    check_value REGISTRATION_TOKEN "$token"
fi

tz="${TZ:-}"
if [ -z "$tz" ] && [ -r /etc/timezone ]; then
    tz=$(head -n 1 /etc/timezone)
fi
tz="${tz:-UTC}"
case "$tz" in
    *[!A-Za-z0-9_+/:.-]*) die "TZ '$tz' is not a time zone name" ;;
esac

insecure=false
if [ -n "${INSECURE_SKIP_VERIFY:-}" ]; then
    insecure=$(parse_bool "$INSECURE_SKIP_VERIFY") || die "INSECURE_SKIP_VERIFY must be true or false"
fi
force_unique=false
if [ -n "${FORCE_UNIQUE_REGISTRATION:-}" ]; then
    force_unique=$(parse_bool "$FORCE_UNIQUE_REGISTRATION") \
        || die "FORCE_UNIQUE_REGISTRATION must be true or false"
fi
agent_name="${AGENT_NAME:-}"
# Trim surrounding whitespace as the agent does.
agent_name="${agent_name#"${agent_name%%[![:space:]]*}"}"
agent_name="${agent_name%"${agent_name##*[![:space:]]}"}"
check_value AGENT_NAME "$agent_name"
[ "${#agent_name}" -le 255 ] || die "AGENT_NAME is longer than 255 characters"
if [ "$force_unique" = true ] && [ -z "$agent_name" ]; then
    die "FORCE_UNIQUE_REGISTRATION=true needs AGENT_NAME (the name that tells the clones apart)"
fi

check_data_path "$data_path"

self_update_url="${SELF_UPDATE_URL:-}"
if [ -n "$self_update_url" ]; then
    check_value SELF_UPDATE_URL "$self_update_url"
    case "$self_update_url" in
        https://?*) ;;
        http://127.0.0.1[:/]* | http://localhost[:/]* | http://\[::1\][:/]*) ;;
        *) die "SELF_UPDATE_URL must be https:// (or http:// on loopback, for tests)" ;;
    esac
fi

# --- architecture -----------------------------------------------------------------------------------
machine=$(uname -m)
arch="${DOCKMON_AGENT_ARCH:-}"
if [ -z "$arch" ]; then
    case "$machine" in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        armv7* | armv8l | armhf) arch=armv7 ;;
        *) die "no dockmon-agent build for this machine ($machine): amd64, arm64 and armv7 are built (ARMv6 boards such as the Pi Zero W / Pi 1 are not supported)" ;;
    esac
fi
case "$arch" in
    amd64 | arm64 | armv7) ;;
    *) die "DOCKMON_AGENT_ARCH must be amd64, arm64 or armv7" ;;
esac
native_arch=0
case "$machine:$arch" in
    x86_64:amd64 | amd64:amd64 | aarch64:arm64 | arm64:arm64 | armv7*:armv7 | armv8l:armv7 | armhf:armv7) native_arch=1 ;;
esac

# --- download and verify ------------------------------------------------------------------------------
version="${DOCKMON_AGENT_VERSION:-}"
version="${version#v}"
base="${DOCKMON_AGENT_BASE_URL:-}"
if [ -z "$base" ]; then
    if [ -n "$version" ]; then
        base="$REPO_URL/releases/download/v$version"
    else
        base="$REPO_URL/releases/latest/download"
    fi
fi
base="${base%/}"
case "$base" in
    https://*) ;;
    http://127.0.0.1[:/]* | http://localhost[:/]* | http://\[::1\][:/]*) ;;
    file://*) ;;
    *) die "DOCKMON_AGENT_BASE_URL must be https:// (or http:// on loopback, for tests)" ;;
esac

asset="dockmon-agent-linux-$arch"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fetch() { # fetch URL FILE
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 --connect-timeout 15 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -T 15 -t 3 -O "$2" "$1"
    else
        die "neither curl nor wget is installed"
    fi
}

say "downloading $asset from $base"
fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS" || die "cannot download $base/SHA256SUMS: refusing to install an unverified binary"
fetch "$base/$asset" "$tmp/$asset" || die "cannot download $base/$asset"

# sha256sum format: "<64 hex>  <name>" (or " *<name>" for binary mode).
want=$(awk -v f="$asset" '($2 == f || $2 == "*" f) && $1 ~ /^[0-9a-fA-F]+$/ && length($1) == 64 { print tolower($1); exit }' "$tmp/SHA256SUMS")
[ -n "$want" ] || die "SHA256SUMS has no entry for $asset: refusing to install"
got=$(sha256sum "$tmp/$asset" | awk '{ print $1 }')
[ "$got" = "$want" ] || die "checksum mismatch for $asset (SHA256SUMS: $want, downloaded: $got): refusing to install"
say "checksum ok ($got)"
chmod 0755 "$tmp/$asset"

if [ "$native_arch" = 1 ]; then
    printed=$("$tmp/$asset" --version) || die "the downloaded $asset does not run on this machine ($machine)"
    say "verified binary: $printed"
fi

# --- service user ----------------------------------------------------------------------------------
# The agent needs the Docker socket; it runs as a system user in the socket's group (root:docker 0660
# on Debian, Ubuntu and Raspberry Pi OS). Membership in that group is root-equivalent on the host, like
# any access to the Docker socket, but the process itself holds no capabilities.
sock=/var/run/docker.sock
sock_group=""
if [ "$service_user" != root ]; then
    if [ -S "$sock" ]; then
        sock_group=$(stat -c %G "$sock")
    elif getent group docker >/dev/null 2>&1; then
        sock_group=docker
    fi
    if [ -z "$destdir" ] && { [ -z "$sock_group" ] || [ "$sock_group" = root ] || [ "$sock_group" = UNKNOWN ]; }; then
        say "warning: $sock is not group-accessible (group '${sock_group:-none}'): running the agent as root"
        service_user=root
    fi
    sock_group="${sock_group:-docker}"
fi

if [ "$service_user" != root ] && [ -z "$destdir" ] && ! id "$service_user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir "$data_path" --shell /usr/sbin/nologin \
        --user-group "$service_user" || die "cannot create system user $service_user"
    say "created system user $service_user"
fi

# --- files ----------------------------------------------------------------------------------------
umask 022
install -d -m 0755 "$destdir/usr/local/bin" "$destdir/etc/systemd/system" "$destdir$lib_dir"
install -d -m 0700 "$destdir$env_dir"
install -d -m 0700 "$destdir$data_path"
if [ "$service_user" != root ] && [ -z "$destdir" ]; then
    chown "$service_user:$service_user" "$destdir$data_path" "$destdir$lib_dir"
fi

cp "$tmp/$asset" "$destdir$real_bin.install"
chmod 0755 "$destdir$real_bin.install"
if [ "$service_user" != root ] && [ -z "$destdir" ]; then
    chown "$service_user:$service_user" "$destdir$real_bin.install"
fi
mv -f "$destdir$real_bin.install" "$destdir$real_bin"
# A self-update staged before this install would otherwise be tried at the next start.
rm -f "$destdir$real_bin.new"
# Relative, so it also resolves inside DESTDIR; replaces the binary of installs before the link.
ln -sfn ../lib/dockmon-agent/dockmon-agent "$destdir$bin_path"

if [ "$keep_env" = 0 ]; then
    umask 077
    {
        echo "# dockmon-agent settings, written by install.sh; read by $unit_path."
        echo "# Holds the registration token: keep it root-only (0600)."
        printf 'DOCKMON_URL="%s"\n' "$url"
        printf 'REGISTRATION_TOKEN="%s"\n' "$token"
        printf 'DATA_PATH="%s"\n' "$data_path"
        printf 'TZ="%s"\n' "$tz"
        if [ "$insecure" = true ]; then echo 'INSECURE_SKIP_VERIFY="true"'; fi
        if [ -n "$agent_name" ]; then printf 'AGENT_NAME="%s"\n' "$agent_name"; fi
        if [ "$force_unique" = true ]; then echo 'FORCE_UNIQUE_REGISTRATION="true"'; fi
        if [ -n "$self_update_url" ]; then printf 'SELF_UPDATE_URL="%s"\n' "$self_update_url"; fi
    } >"$destdir$env_file.new"
    chmod 0600 "$destdir$env_file.new"
    mv -f "$destdir$env_file.new" "$destdir$env_file"
    umask 022
else
    chmod 0600 "$destdir$env_file"
    old_data=$(env_data_path)
    if [ -n "$old_data" ]; then
        check_data_path "$old_data"
        data_path="$old_data"
        install -d -m 0700 "$destdir$data_path"
    fi
fi
rm -f "$destdir$data_path/update.lock"

user_lines="User=root"
cap_lines=""
if [ "$service_user" != root ]; then
    user_lines="User=$service_user
Group=$service_user
SupplementaryGroups=$sock_group"
    cap_lines="CapabilityBoundingSet=
AmbientCapabilities="
fi
arch_line=""
if [ "$native_arch" = 1 ]; then
    arch_line="SystemCallArchitectures=native"
fi

cat >"$destdir$unit_path.new" <<EOF
# dockmon-agent, written by install.sh. Settings: $env_file (0600). Logs: journalctl -u dockmon-agent
[Unit]
Description=DockMon agent
Documentation=$REPO_URL
After=docker.service network-online.target
Wants=network-online.target
Requires=docker.service

[Service]
Type=simple
EnvironmentFile=$env_file
ExecStart=$bin_path
# Also how a self-update ends: the agent stages the new binary, exits, and is started again.
Restart=always
RestartSec=10
$user_lines
UMask=0077

# A Raspberry Pi Zero 2 W has 512 MB for everything: the agent needs a few MB.
MemoryHigh=48M
MemoryMax=64M
TasksMax=32

# Hardening: the agent reads /proc and /sys, talks to the Docker socket and to DockMon, and writes
# only its data folder and its binary's folder (self-update).
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=$data_path
ReadWritePaths=$lib_dir
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
$arch_line
$cap_lines

[Install]
WantedBy=multi-user.target
EOF
chmod 0644 "$destdir$unit_path.new"
mv -f "$destdir$unit_path.new" "$destdir$unit_path"
say "installed $real_bin (linked from $bin_path), $env_file (0600), $unit_path"

if [ "$no_start" = 1 ]; then
    say "not starting the service (--no-start or DESTDIR)"
    exit 0
fi
if ! command -v systemctl >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then
    die "systemd is not running here: the files are installed, start $bin_path yourself"
fi
systemctl daemon-reload
systemctl enable dockmon-agent.service >/dev/null
systemctl restart dockmon-agent.service
sleep 2
if systemctl is-active --quiet dockmon-agent.service; then
    say "dockmon-agent is running: journalctl -u dockmon-agent -f"
else
    die "dockmon-agent did not stay up: journalctl -u dockmon-agent -n 50"
fi
