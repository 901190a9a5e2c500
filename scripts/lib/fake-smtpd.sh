#!/usr/bin/env bash
# A tiny SMTP server on standard input/output that stands in for
# qmail-smtpd behind greylag's tcpserver wrapper in the tests: it accepts
# everything and says "fake-smtpd" in its replies so a client can tell who
# answered.
printf '220 fake-smtpd ESMTP\r\n'
while IFS= read -r line; do
    line="${line%$'\r'}"
    case "${line^^}" in
    HELO* | EHLO*) printf '250 fake-smtpd\r\n' ;;
    MAIL* | RSET* | NOOP*) printf '250 2.1.0 fake-smtpd ok\r\n' ;;
    RCPT*) printf '250 2.1.5 fake-smtpd accepts the recipient\r\n' ;;
    DATA*)
        printf '354 fake-smtpd go ahead\r\n'
        while IFS= read -r body; do
            [[ "${body%$'\r'}" == "." ]] && break
        done
        printf '250 2.0.0 fake-smtpd queued\r\n'
        ;;
    QUIT*)
        printf '221 fake-smtpd bye\r\n'
        exit 0
        ;;
    *) printf '502 fake-smtpd unknown\r\n' ;;
    esac
done
