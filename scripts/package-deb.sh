#!/usr/bin/env bash
# Builds the Debian package of greylag: a release binary with the Swift
# runtime linked in (no Swift needed on the target) and greylag-qmail, the
# qmail helpers alone in a static executable, both stripped, with its
# commented configuration file (a conffile), the systemd unit, man pages,
# shell completions and maintainer scripts, assembled with dpkg-deb.
#
#   scripts/package-deb.sh [--mariadb] [--output DIR] [--no-build] [--lintian]
#
#   --mariadb    build greylag-mysql instead: the same package with the
#                MySQL/MariaDB store backend (--traits MariaDB, needs
#                libmariadb-dev here and libmariadb3 on the target);
#                Conflicts/Replaces/Provides greylag.
#   --output DIR where the .deb goes (default: the current directory).
#   --no-build   package the binary already in the scratch path.
#   --lintian    run lintian on the result (fails on errors).
#
# Environment: GREYLAG_DEB_SCRATCH, the build folder (default .build-release
# for both: the dependencies are built once, and switching between the two
# packages recompiles only greylag's own modules); DEB_REVISION (default 1);
# DEB_MAINTAINER ("Name <address>", default git's user.name and user.email).
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'package-deb: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

MARIADB=0
OUTPUT="$PWD"
BUILD=1
LINTIAN=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --mariadb) MARIADB=1 ;;
        --output) [[ $# -ge 2 ]] || die "--output needs a directory"; OUTPUT="$2"; shift ;;
        --output=*) OUTPUT="${1#--output=}" ;;
        --no-build) BUILD=0 ;;
        --lintian) LINTIAN=1 ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[[ -n "$OUTPUT" ]] || die "--output needs a directory"
mkdir -p "$OUTPUT" || die "cannot make the output directory $OUTPUT"
OUTPUT="$(cd "$OUTPUT" && pwd)"

for tool in dpkg-deb dpkg-shlibdeps fakeroot strip gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg-dev fakeroot binutils)"
done

if [[ $MARIADB -eq 1 ]]; then
    PACKAGE=greylag-mysql
    SCRATCH="${GREYLAG_DEB_SCRATCH:-.build-release}"
    TRAITS=(--traits MariaDB)
else
    PACKAGE=greylag
    SCRATCH="${GREYLAG_DEB_SCRATCH:-.build-release}"
    TRAITS=()
fi

UPSTREAM="$(sed -n 's/.*static let string = "\([^"]*\)".*/\1/p' Sources/GreylagCore/Version.swift)"
[[ "$UPSTREAM" =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "no version found in Sources/GreylagCore/Version.swift"
REVISION="${DEB_REVISION:-1}"
[[ "$REVISION" =~ ^[0-9A-Za-z.+~]+$ ]] || die "DEB_REVISION must be a Debian revision such as 1 or 2~test"
VERSION="$UPSTREAM-$REVISION"
ARCH="$(dpkg --print-architecture)"
if [[ -z "${DEB_MAINTAINER:-}" ]]; then
    name="$(git config user.name 2>/dev/null || true)"
    mail="$(git config user.email 2>/dev/null || true)"
    DEB_MAINTAINER="${name:-greylag maintainers} <${mail:-greylag@localhost.invalid}>"
fi
[[ "$DEB_MAINTAINER" =~ ^[^\<\>]+\ \<[^\<\>@\ ]+@[^\<\>\ ]+\>$ ]] || die "DEB_MAINTAINER must read 'Name <address>'"
# Reproducible dates: the last commit's time.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

BUILD_ARGS=(-c release --static-swift-stdlib --scratch-path "$SCRATCH" "${TRAITS[@]}")
if [[ $BUILD -eq 1 ]]; then
    log "building $PACKAGE $VERSION (swift build ${BUILD_ARGS[*]} --product greylag); this takes a while"
    swift build "${BUILD_ARGS[@]}" --product greylag
    swift build "${BUILD_ARGS[@]}" --product greylag-qmail
fi
BIN="$(swift build "${BUILD_ARGS[@]}" --show-bin-path)/greylag"
[[ -x "$BIN" ]] || die "no binary at $BIN (run without --no-build)"
got="$("$BIN" --version)"
[[ "$got" == "$UPSTREAM" ]] || die "$BIN --version says '$got', Version.swift says '$UPSTREAM'"
QMAIL_BIN="$(dirname "$BIN")/greylag-qmail"
[[ -x "$QMAIL_BIN" ]] || die "no binary at $QMAIL_BIN (run without --no-build)"

WORK="$(mktemp -d /tmp/greylag-deb.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
mkdir -p "$ROOT/DEBIAN"

log "staging in $WORK"
install -d "$ROOT/usr/sbin"
install -m 0755 "$BIN" "$ROOT/usr/sbin/greylag"
strip --remove-section=.comment --remove-section=.note "$ROOT/usr/sbin/greylag"
G="$ROOT/usr/sbin/greylag"
# The stripped binary must still run (Swift keeps its metadata in sections strip leaves alone).
[[ "$("$G" --version)" == "$UPSTREAM" ]] || die "the stripped binary does not run"
"$G" reference --help >/dev/null 2>&1 \
    || die "this greylag has no 'reference' command (needed for the conffile and greylag.toml(5))"
# greylag-qmail: what docs/qmail.md has qmail run; it too must run stripped.
install -m 0755 "$QMAIL_BIN" "$ROOT/usr/sbin/greylag-qmail"
strip --remove-section=.comment --remove-section=.note "$ROOT/usr/sbin/greylag-qmail"
"$ROOT/usr/sbin/greylag-qmail" qmail-spp --help 2>&1 | grep -q '^usage: greylag-qmail qmail-spp ' \
    || die "the stripped greylag-qmail does not run"

# The configuration file: every key commented with its default and meaning.
install -d "$ROOT/etc/greylag"
"$G" reference --format conffile \
    --set 'store.path="/var/lib/greylag/greylag.db"' >"$ROOT/etc/greylag/greylag.toml"
chmod 0644 "$ROOT/etc/greylag/greylag.toml"
# It must load as it stands, and put the store where the unit allows writes.
"$G" check-config --config "$ROOT/etc/greylag/greylag.toml" >"$WORK/check-config.out" 2>&1 \
    || { cat "$WORK/check-config.out" >&2; die "the generated greylag.toml does not pass check-config"; }
grep -q '/var/lib/greylag/greylag.db' "$WORK/check-config.out" \
    || die "check-config of the generated greylag.toml does not show the store /var/lib/greylag/greylag.db"

install -d "$ROOT/lib/systemd/system"
install -m 0644 packaging/greylag.service "$ROOT/lib/systemd/system/greylag.service"

# Man pages: greylag(8) from the argument parser's own generator, greylag.toml(5) from the reference.
install -d "$ROOT/usr/share/man/man8" "$ROOT/usr/share/man/man5"
AP_SRC="$SCRATCH/checkouts/swift-argument-parser"
[[ -f "$AP_SRC/Tools/generate-manual/GenerateManual.swift" ]] || die "no swift-argument-parser checkout in $AP_SRC"
GM_SCRATCH="$SCRATCH/generate-manual"
if [[ ! -x "$GM_SCRATCH/tool/debug/generate-manual" ]]; then
    log "building swift-argument-parser's generate-manual"
    rm -rf "$GM_SCRATCH/src"
    mkdir -p "$GM_SCRATCH/src"
    (cd "$AP_SRC" && tar --exclude=.git -cf - .) | tar -C "$GM_SCRATCH/src" -xf -
    swift build --package-path "$GM_SCRATCH/src" --scratch-path "$GM_SCRATCH/tool" --product generate-manual >&2
fi
GM="$(swift build --package-path "$GM_SCRATCH/src" --scratch-path "$GM_SCRATCH/tool" --show-bin-path)/generate-manual"
mkdir -p "$WORK/man"
"$GM" "$G" --section 8 --date "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" --output-directory "$WORK/man" >&2
[[ -s "$WORK/man/greylag.8" ]] || die "generate-manual wrote no greylag.8"
awk -f packaging/man-fixup.awk "$WORK/man/greylag.8" >"$WORK/man/greylag.8.fixed"
mv "$WORK/man/greylag.8.fixed" "$WORK/man/greylag.8"
"$G" reference --format man >"$WORK/man/greylag.toml.5"
[[ -s "$WORK/man/greylag.toml.5" ]] || die "greylag reference --format man wrote nothing"
gzip -9n <"$WORK/man/greylag.8" >"$ROOT/usr/share/man/man8/greylag.8.gz"
gzip -9n <"$WORK/man/greylag.toml.5" >"$ROOT/usr/share/man/man5/greylag.toml.5.gz"

# Shell completions, where Debian's shells look for them.
install -d "$ROOT/usr/share/bash-completion/completions" "$ROOT/usr/share/zsh/vendor-completions" \
    "$ROOT/usr/share/fish/vendor_completions.d"
# (bash's is sourced, not run: no #! line.)
"$G" --generate-completion-script bash | sed '1{/^#!/d}' >"$ROOT/usr/share/bash-completion/completions/greylag"
"$G" --generate-completion-script zsh >"$ROOT/usr/share/zsh/vendor-completions/_greylag"
"$G" --generate-completion-script fish >"$ROOT/usr/share/fish/vendor_completions.d/greylag.fish"

# Documentation: copyright, the Debian changelog, the README and the docs.
DOC="$ROOT/usr/share/doc/$PACKAGE"
install -d "$DOC"
install -m 0644 packaging/debian/copyright "$DOC/copyright"
{
    printf '%s (%s) unstable; urgency=medium\n\n' "$PACKAGE" "$VERSION"
    printf '  * Built by scripts/package-deb.sh from commit %s.\n\n' \
        "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf ' -- %s  %s\n' "$DEB_MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$DOC/changelog.Debian.gz"
install -d "$ROOT/usr/share/lintian/overrides"
sed "s/^greylag:/$PACKAGE:/" packaging/debian/lintian-overrides >"$ROOT/usr/share/lintian/overrides/$PACKAGE"
# The whole reference (docs/*.md), which log lines and the dashboard name
# (such as docs/store.md for a broken store), as /usr/share/doc/greylag/docs/.
install -d "$DOC/docs"
gzip -9n <README.md >"$DOC/README.md.gz"
for page in docs/*.md; do
    gzip -9n <"$page" >"$DOC/docs/$(basename "$page").gz"
done

# Maintainer scripts and control files.
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$ROOT/DEBIAN/"
printf '/etc/greylag/greylag.toml\n' >"$ROOT/DEBIAN/conffiles"

# Depends: the shared libraries the binary still links (libc, SQLite, libstdc++, libmariadb3, ...).
mkdir -p "$WORK/src/debian"
printf 'Source: greylag\n\nPackage: %s\nArchitecture: any\n' "$PACKAGE" >"$WORK/src/debian/control"
SHLIBS="$(cd "$WORK/src" && dpkg-shlibdeps -O "-e$ROOT/usr/sbin/greylag" "-e$ROOT/usr/sbin/greylag-qmail" 2>"$WORK/shlibdeps.err")" \
    || { cat "$WORK/shlibdeps.err" >&2; die "dpkg-shlibdeps failed"; }
SHLIBS="${SHLIBS#shlibs:Depends=}"
[[ -n "$SHLIBS" ]] || die "dpkg-shlibdeps found no dependencies"
# --no-build packages whatever the scratch path holds: it must be the right build.
if [[ $MARIADB -eq 1 && "$SHLIBS" != *libmariadb3* ]]; then
    die "the MariaDB build does not link libmariadb3 (Depends: $SHLIBS); build without --no-build"
fi
if [[ $MARIADB -eq 0 && "$SHLIBS" == *libmariadb* ]]; then
    die "the binary in $SCRATCH is the MariaDB build (Depends: $SHLIBS); build without --no-build"
fi

INSTALLED_SIZE="$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)"
{
    printf 'Package: %s\n' "$PACKAGE"
    printf 'Version: %s\n' "$VERSION"
    printf 'Architecture: %s\n' "$ARCH"
    printf 'Maintainer: %s\n' "$DEB_MAINTAINER"
    printf 'Installed-Size: %s\n' "$INSTALLED_SIZE"
    printf 'Depends: adduser, %s\n' "$SHLIBS"
    if [[ $MARIADB -eq 1 ]]; then
        printf 'Conflicts: greylag\nReplaces: greylag\nProvides: greylag\n'
    fi
    printf 'Section: mail\nPriority: optional\n'
    if [[ $MARIADB -eq 1 ]]; then
        printf 'Description: greylisting daemon for Postfix, Sendmail, Exim, qmail, OpenSMTPD (MySQL)\n'
    else
        printf 'Description: greylisting daemon for Postfix, Sendmail, Exim, qmail and OpenSMTPD\n'
    fi
    cat <<'EOF'
 greylag defers mail from an unknown (client network, sender, recipient)
 triplet with a temporary error; real mail servers retry and get through,
 most spam engines never come back. It serves Postfix as a policy server,
 Sendmail and Postfix as a milter, qmail through qmail-spp, an envelope
 scanner or a tcpserver wrapper, OpenSMTPD through a filter and Exim through
 readsocket or greylistd's socket, and keeps its state in SQLite or in a
 PostgreSQL database shared by several MX hosts.
EOF
    if [[ $MARIADB -eq 1 ]]; then
        printf ' .\n This build also has the MySQL/MariaDB store backend (store.backend = "mysql").\n'
    fi
} >"$ROOT/DEBIAN/control"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -print0 | LC_ALL=C sort -z \
    | xargs -0 md5sum | sed 's# \./# #') >"$ROOT/DEBIAN/md5sums"

find "$ROOT" -type d -exec chmod 0755 {} +
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

DEB="$OUTPUT/${PACKAGE}_${VERSION}_${ARCH}.deb"
fakeroot dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >&2
log "built $DEB"

if [[ $LINTIAN -eq 1 ]]; then
    command -v lintian >/dev/null || die "lintian is missing (apt-get install lintian)"
    log "lintian $DEB"
    lintian --fail-on error "$DEB" >&2 || die "lintian reports errors"
fi
printf '%s\n' "$DEB"
