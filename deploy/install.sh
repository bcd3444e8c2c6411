#!/bin/sh
# Installs the Hades agent from this built source tree: the program into PREFIX, the systemd
# unit, a default configuration (only when there is none) and the state and log folders.
# Works offline: production dependencies are copied from the tree's node_modules, as tested.
# Idempotent: the program is staged beside PREFIX and swapped in whole, so files of an older
# version do not linger; the configuration is never overwritten.
#
# usage: deploy/install.sh [--root DIR] [--prefix /opt/hades] [--no-enable]
set -eu
umask 022

ROOT=/
PREFIX=/opt/hades
ENABLE=yes
UNIT=hades-agent.service

say() { printf 'install.sh: %s\n' "$*"; }
# die STATUS MESSAGE: 2 for a wrong command line, 3 for a machine or tree that is not ready.
die() {
  status=$1
  shift
  printf 'install.sh: %s\n' "$*" >&2
  exit "$status"
}

usage() {
  cat <<'EOF'
usage: deploy/install.sh [--root DIR] [--prefix DIR] [--no-enable]

Installs the Hades agent from the built tree this script belongs to.

  --root DIR     install into DIR as if it were / (image builds, tests); default /
  --prefix DIR   where the program goes, an absolute path; default /opt/hades
  --no-enable    do not enable and (re)start the service
  -h, --help     this text

Writes PREFIX/{bin,dist/src,driver/build,node_modules,deploy}, /etc/systemd/system/hades-agent.service,
/etc/hades/agent.yaml (only when absent, mode 0600), /var/lib/hades (0700) and /var/log/hades.
With --root / and systemd running, reloads systemd, enables the unit and (re)starts it.
EOF
}

while [ $# -gt 0 ]; do
  case $1 in
    --root) [ $# -ge 2 ] || die 2 "--root needs a folder"; ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#--root=}; shift ;;
    --prefix) [ $# -ge 2 ] || die 2 "--prefix needs a folder"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --no-enable) ENABLE=no; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die 2 "unknown argument '$1' (see --help)" ;;
  esac
done

# The prefix is written into the unit and removed and replaced whole: keep it plain.
while [ "${PREFIX%/}" != "$PREFIX" ]; do PREFIX=${PREFIX%/}; done
case $PREFIX in
  /*) ;;
  *) die 2 "--prefix must be an absolute path (got '$PREFIX')" ;;
esac
case $PREFIX in
  *[!A-Za-z0-9._/-]*) die 2 "--prefix may hold only letters, digits and . _ - / (got '$PREFIX')" ;;
esac
case "$PREFIX/" in
  */./* | */../* | *//*) die 2 "--prefix must not contain ., .. or empty components (got '$PREFIX')" ;;
esac
case $PREFIX in
  /bin | /boot | /dev | /etc | /home | /lib | /lib64 | /opt | /proc | /root | /run | /sbin | /srv | /sys | /tmp | /usr | /usr/local | /var | '')
    die 2 "--prefix '$PREFIX' is a system folder; give a folder of its own such as /opt/hades" ;;
esac

case $ROOT in
  /*) ;;
  *) die 2 "--root must be an absolute path (got '$ROOT')" ;;
esac

# The tree must be built: the compiled program and the driver. Checked before anything is written.
SRC=$(cd "$(dirname "$0")/.." && pwd -P)
missing=
for file in package.json bin/hades.js dist/src/cli/main.js deploy/$UNIT; do
  [ -f "$SRC/$file" ] || missing="$missing $file"
done
[ -x "$SRC/driver/build/hades-driver" ] || missing="$missing driver/build/hades-driver"
[ -z "$missing" ] || die 3 "the project in $SRC is not built (missing:$missing); run \`npm run bootstrap\` there first"

NODE=$(command -v node) || die 3 "node is not on PATH; install Node.js 20.19 or later"
case $NODE in
  /*) ;;
  *) die 3 "node resolves to '$NODE', not an absolute path" ;;
esac
case $NODE in
  *[!A-Za-z0-9._/+-]*) die 3 "the path of node ('$NODE') has characters a unit file would need quoted" ;;
esac
command -v npm >/dev/null 2>&1 || die 3 "npm is needed to list the production dependencies"
lserr=$(mktemp)
if ! deps=$(cd "$SRC" && npm ls --omit=dev --all --parseable 2>"$lserr"); then
  sed -n '1,5p' "$lserr" >&2
  rm -f "$lserr"
  die 3 "npm ls could not list the production dependencies in $SRC/node_modules (its words above); run \`npm ci\` there first"
fi
rm -f "$lserr"

if [ "$ROOT" = / ]; then
  DESTROOT=
  [ "$(id -u)" = 0 ] || die 3 "installing into / needs root"
else
  mkdir -p "$ROOT"
  DESTROOT=$(cd "$ROOT" && pwd -P)
  [ "$DESTROOT" != / ] || DESTROOT=
fi
DEST=$DESTROOT$PREFIX
[ "$SRC" != "$DEST" ] || die 2 "the tree in $SRC cannot be installed onto itself"

# Stage the program beside its destination, then swap it in.
STAGE=$DEST.installing
rm -rf "$STAGE"
mkdir -p "$STAGE/dist" "$STAGE/driver/build" "$STAGE/deploy" "$STAGE/node_modules"
cp -R "$SRC/bin" "$STAGE/bin"
cp -R "$SRC/dist/src" "$STAGE/dist/src"
cp "$SRC/package.json" "$STAGE/"
cp "$SRC/driver/build/hades-driver" "$STAGE/driver/build/"
[ ! -f "$SRC/driver/build/manifest.json" ] || cp "$SRC/driver/build/manifest.json" "$STAGE/driver/build/"
[ ! -d "$SRC/rules" ] || cp -R "$SRC/rules" "$STAGE/rules"
[ ! -d "$SRC/data" ] || cp -R "$SRC/data" "$STAGE/data"
for file in README.md install.sh $UNIT; do
  [ ! -f "$SRC/deploy/$file" ] || cp "$SRC/deploy/$file" "$STAGE/deploy/"
done
old_ifs=$IFS
IFS='
'
for dir in $deps; do
  case $dir in
    "$SRC") ;;
    "$SRC"/node_modules/*)
      rel=${dir#"$SRC"/}
      # A package copied whole already brought its nested dependencies.
      if [ ! -e "$STAGE/$rel" ]; then
        mkdir -p "$(dirname "$STAGE/$rel")"
        cp -R "$dir" "$STAGE/$rel"
      fi
      ;;
    *) die 3 "dependency $dir lives outside $SRC/node_modules (a link?); install it properly with \`npm ci\`" ;;
  esac
done
IFS=$old_ifs
chmod 0755 "$STAGE" "$STAGE/driver/build/hades-driver"

# An existing configuration is checked by the new program before it replaces the old one: an
# upgrade that the running agent's configuration does not pass is refused, and the agent keeps
# running the program it has.
CONFDIR=$DESTROOT/etc/hades
CONF=$CONFDIR/agent.yaml
if [ -e "$CONF" ] && ! "$NODE" "$STAGE/bin/hades.js" config check --role agent "$CONF" >/dev/null; then
  rm -rf "$STAGE"
  die 2 "$CONF is not valid for this version (problems above): fix it, then run install.sh again; nothing was changed"
fi

if [ -e "$DEST" ]; then
  rm -rf "$DEST.previous"
  mv "$DEST" "$DEST.previous"
fi
mkdir -p "$(dirname "$DEST")"
mv "$STAGE" "$DEST"
rm -rf "$DEST.previous"
say "installed the program in $DEST"

# The unit, with the placeholders replaced.
UNITDIR=$DESTROOT/etc/systemd/system
mkdir -p "$UNITDIR"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@NODE@|$NODE|g" "$SRC/deploy/$UNIT" >"$UNITDIR/$UNIT.tmp"
if grep -q '@[A-Z_]*@' "$UNITDIR/$UNIT.tmp"; then
  rm -f "$UNITDIR/$UNIT.tmp"
  die 3 "deploy/$UNIT has a placeholder install.sh does not know"
fi
chmod 0644 "$UNITDIR/$UNIT.tmp"
mv "$UNITDIR/$UNIT.tmp" "$UNITDIR/$UNIT"
say "installed $UNITDIR/$UNIT"

# The configuration: every default, written once; an existing one is kept (checked above).
mkdir -p "$CONFDIR"
if [ -e "$CONF" ]; then
  say "kept the existing $CONF"
else
  (umask 077 && "$NODE" "$DEST/bin/hades.js" config defaults --role agent >"$CONF.tmp")
  chmod 0600 "$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
  say "wrote $CONF with every default"
fi

mkdir -p "$DESTROOT/var/lib/hades" "$DESTROOT/var/log/hades"
chmod 0700 "$DESTROOT/var/lib/hades"
chmod 0750 "$DESTROOT/var/log/hades"

if [ -z "$DESTROOT" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "$ENABLE" = yes ]; then
    systemctl enable "$UNIT"
    # restart, not start: after an upgrade the new program must run.
    systemctl restart "$UNIT"
    say "enabled and (re)started $UNIT"
  else
    say "not enabled (--no-enable); start it with: systemctl enable --now $UNIT"
  fi
else
  say "systemd not managed here; on the target host run: systemctl daemon-reload && systemctl enable --now $UNIT"
fi
