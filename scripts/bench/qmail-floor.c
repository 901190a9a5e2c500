/*
 * qmail-floor: the floor for a qmail helper call, for scripts/bench-qmail.sh.
 * Sends the policy request that `greylag qmail-spp` sends (the same
 * attributes, in the same order, from the same qmail-smtpd variables) to
 * the unix socket $GREYLAG_SOCKET, reads the answer up to its empty line
 * and prints what the plugin would (E451/E553 line, or nothing to pass).
 * The least a helper process can do: no option parsing, no timeouts.
 *
 *   cc -O2 -o qmail-floor scripts/bench/qmail-floor.c
 *   GREYLAG_SOCKET=/run/greylag/policy.sock SMTPMAILFROM=... ./qmail-floor [ORIGIN]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char request[16384];
static size_t used;

/* Appends name=value\n, dropping CR and LF from the value as the helper does. */
static void attribute(const char *name, const char *value) {
    if (!value) value = "";
    size_t n = strlen(name);
    if (used + n + strlen(value) + 3 >= sizeof request) { fputs("qmail-floor: request too long\n", stderr); exit(111); }
    memcpy(request + used, name, n);
    used += n;
    request[used++] = '=';
    for (; *value; value++) if (*value != '\n' && *value != '\r') request[used++] = *value;
    request[used++] = '\n';
}

int main(int argc, char **argv) {
    const char *path = getenv("GREYLAG_SOCKET");
    const char *origin = argc > 1 ? argv[1] : "qmail-spp";
    if (!path) { fputs("qmail-floor: GREYLAG_SOCKET is not set\n", stderr); return 111; }
    if (!strncmp(path, "unix:", 5)) path += 5;

    const char *ip = getenv("TCPREMOTEIP");
    if (ip && !strncasecmp(ip, "::ffff:", 7) && strchr(ip, '.')) ip += 7;
    const char *name = getenv("TCPREMOTEHOST");
    attribute("request", "smtpd_access_policy");
    attribute("protocol_state", "RCPT");
    attribute("protocol_name", "SMTP");
    attribute("client_address", ip);
    attribute("client_name", name && *name ? name : "unknown");
    attribute("helo_name", getenv("SMTPHELOHOST"));
    attribute("sender", getenv("SMTPMAILFROM"));
    attribute("recipient", getenv("SMTPRCPTTO"));
    attribute("sasl_username", getenv("SMTPAUTHUSER"));
    attribute("greylag_origin", origin);
    request[used++] = '\n';

    struct sockaddr_un address = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof address.sun_path) { fputs("qmail-floor: socket path too long\n", stderr); return 111; }
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        fprintf(stderr, "qmail-floor: cannot connect to %s: %s\n", path, strerror(errno));
        return 111;
    }
    for (size_t sent = 0; sent < used;) {
        ssize_t n = write(fd, request + sent, used - sent);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { perror("qmail-floor: write"); return 111; }
        sent += (size_t)n;
    }
    char reply[65536];
    size_t got = 0;
    while (got < 2 || reply[got - 1] != '\n' || reply[got - 2] != '\n') {
        if (got == sizeof reply - 1) { fputs("qmail-floor: answer too long\n", stderr); return 111; }
        ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { fputs("qmail-floor: no complete answer\n", stderr); return 111; }
        got += (size_t)n;
    }
    reply[got] = 0;
    close(fd);
    char *action = strstr(reply, "action=");
    if (!action) { fputs("qmail-floor: answer without action\n", stderr); return 111; }
    action += 7;
    *strchr(action, '\n') = 0;
    if (!strncasecmp(action, "DEFER", 5) || action[0] == '4') printf("E451 4.7.1 %s\n", action);
    else if (!strcasecmp(action, "REJECT") || action[0] == '5') printf("E553 5.7.1 %s\n", action);
    return 0;
}
