# generate-manual copies a command's discussion text verbatim: blank lines
# (an mdoc warning) and indented blocks (filled as prose). Make the blank
# lines paragraph breaks and the indented blocks literal displays.
/^[ \t]/ { if (!lit) { print ".Bd -literal"; lit = 1 } print; next }
lit { print ".Ed"; lit = 0 }
/^$/ { print ".Pp"; next }
{ print }
END { if (lit) print ".Ed" }
