#!/usr/bin/env bash
# The configuration snippets of the documentation, for the scripts that
# feed them to real MTAs: a snippet is the fenced block right after a
# `<!-- snippet: NAME -->` line in README.md or docs/*.md (the Swift tests
# read them the same way: Tests/GreylagServerTests/DocSnippets.swift).
# Run from the repository's top directory.

# doc_snippet NAME: prints the snippet's lines; fails when no document has it.
doc_snippet() {
    local text
    text="$(awk -v marker="<!-- snippet: $1 -->" '
        state == 2 { if ($0 ~ /^```/) { done = 1; exit } print; next }
        state == 1 { if ($0 ~ /^```/) { state = 2; next } exit }
        $0 == marker { state = 1 }
        END { exit done ? 0 : 1 }' README.md docs/*.md)" || {
        printf 'docs.sh: no <!-- snippet: %s --> block in README.md or docs/\n' "$1" >&2
        return 1
    }
    printf '%s\n' "$text"
}

# doc_main_cf_params NAME [OLD NEW]: the snippet's main.cf lines as
# `name=value` arguments for `postconf -e`, one a line (continuation lines
# joined), with the one occurrence of OLD replaced by NEW (an address of
# the docs by the test's); anything but one occurrence is an error, so a
# change of the docs cannot silently stop being tested.
doc_main_cf_params() {
    local text
    text="$(doc_snippet "$1")" || return 1
    if (($# == 3)); then
        local n
        n="$(grep -o -F -- "$2" <<<"$text" | wc -l)"
        if [[ "$n" -ne 1 ]]; then
            printf 'docs.sh: expected one %s in snippet %s, found %s\n' "$2" "$1" "$n" >&2
            return 1
        fi
        text="${text/"$2"/"$3"}"
    fi
    awk '/^[ \t]/ { sub(/^[ \t]+/, ""); line = line " " $0; next }
         { if (line != "") print line; line = $0 }
         END { if (line != "") print line }' <<<"$text" |
        sed -E 's/^([A-Za-z0-9_]+)[ \t]*=[ \t]*/\1=/; s/=[ \t]+/=/'
}
