/*
 * hotbackup.h: the C interface of libhotbackup.so besides the wrapped libc names.
 *
 * The shim serves one control protocol, reachable two ways:
 *   - a Unix stream socket at $HOTBACKUP_SOCKET (default /tmp/hotbackup-<uid>/<pid>.sock),
 *     one JSON object per line each way;
 *   - in process, through hotbackup_request() below (the addon and the C++ tests use it).
 * Both go through the same request handler. The protocol is documented in docs/protocol.md.
 */
#ifndef HOTBACKUP_H
#define HOTBACKUP_H

#ifdef __cplusplus
extern "C" {
#endif

/* Handles one request (a JSON object, e.g. {"op":"status"}) and returns the reply as a
 * NUL-terminated JSON string allocated with malloc; free it with hotbackup_free().
 * Never returns NULL unless memory is exhausted. Safe to call from any thread. */
char *hotbackup_request(const char *request_json);
void hotbackup_free(char *reply);

/* 1 when this process is the one the shim serves (see docs/protocol.md, "Which process is
 * served"), 0 when the shim is inert in it. */
int hotbackup_is_served(void);

#ifdef __cplusplus
}
#endif
#endif
