# shellcheck shell=bash
# The RFC 7208 test suite of the openspf project, as PyPI's pyspf source
# distribution ships it (test/rfc7208-tests.yml), converted to JSON for the
# Swift tests (GreylagSPFTests/SPFSuiteTests.swift reads GREYLAG_SPF_SUITE).
#
# `spf_suite_fetch DIR` downloads pyspf's sdist with pip into DIR (kept: a
# second run finds the JSON there and downloads nothing), extracts the YAML
# file and converts it with Debian's python3-yaml (/usr/bin/python3, from
# scripts/install-test-deps.sh). It prints the path of the JSON file.
# Nothing of pyspf is committed to this repository.

SPF_SUITE_PYSPF_VERSION="2.0.14"

spf_suite_log() { printf 'spf-suite: %s\n' "$*" >&2; }

# spf_suite_fetch DIR: make DIR/rfc7208-tests.json and print its path.
spf_suite_fetch() {
    local dir="$1"
    local json="$dir/rfc7208-tests.json"
    local marker="$dir/.pyspf-$SPF_SUITE_PYSPF_VERSION"
    if [[ -s "$json" && -f "$marker" ]]; then
        printf '%s\n' "$json"
        return 0
    fi
    mkdir -p "$dir"
    local sdist
    sdist="$(compgen -G "$dir/pyspf-$SPF_SUITE_PYSPF_VERSION.tar.gz" || true)"
    if [[ -z "$sdist" ]]; then
        spf_suite_log "downloading pyspf $SPF_SUITE_PYSPF_VERSION (source distribution)"
        local pip=(python3 -m pip)
        python3 -m pip --version >/dev/null 2>&1 || pip=(/usr/bin/python3 -m pip)
        "${pip[@]}" download --quiet --no-deps --no-binary :all: \
            "pyspf==$SPF_SUITE_PYSPF_VERSION" -d "$dir" >&2 || {
            spf_suite_log "pip download of pyspf failed"
            return 1
        }
        sdist="$dir/pyspf-$SPF_SUITE_PYSPF_VERSION.tar.gz"
    fi
    [[ -f "$sdist" ]] || { spf_suite_log "no $sdist after download"; return 1; }
    local member="pyspf-$SPF_SUITE_PYSPF_VERSION/test/rfc7208-tests.yml"
    tar -xzf "$sdist" -O "$member" >"$dir/rfc7208-tests.yml" || {
        spf_suite_log "$member not in $sdist"
        return 1
    }
    /usr/bin/python3 - "$dir/rfc7208-tests.yml" "$json.tmp" <<'PY' || { spf_suite_log "YAML to JSON failed"; return 1; }
import json, sys, yaml
with open(sys.argv[1], encoding="utf-8") as f:
    scenarios = [s for s in yaml.safe_load_all(f) if s]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(scenarios, f, ensure_ascii=False)
PY
    mv "$json.tmp" "$json"
    : >"$marker"
    printf '%s\n' "$json"
}
