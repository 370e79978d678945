/* SPDX-License-Identifier: MIT */
/*
 * addr — client addresses as text, trusted-proxy lists (addresses and CIDRs)
 * and the client behind X-Forwarded-For. Used by the HTTP server and by the
 * configuration that validates TRELLOHOOK_TRUSTED_PROXIES. Pure functions,
 * no state: thread-safe.
 */
#ifndef TH_UTIL_ADDR_H
#define TH_UTIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define NET_ADDR_LEN 64    /* room for any IPv4/IPv6 address as text */
#define NET_MAX_PROXIES 64 /* entries in a trusted-proxy list */

/* One address or network; IPv4 is kept as IPv4-mapped IPv6. */
typedef struct net_cidr {
	unsigned char addr[16];
	unsigned bits; /* prefix length over the 16 bytes (IPv4 /24 is 120) */
} net_cidr;

/* Parse a comma-separated list of addresses and CIDRs ("10.0.0.0/8, ::1")
 * into @out (at most @max); empty entries are skipped. On a malformed entry
 * returns TH_EINVAL and says which in @why (may be NULL). Pure; thread-safe. */
int net_cidrs_parse(const char *list, net_cidr *out, size_t max, size_t *n, char *why,
                    size_t whysz);
/* Whether the textual address @addr lies in one of @c. */
bool net_cidrs_match(const net_cidr *c, size_t n, const char *addr);
/* The client address of a request from @peer carrying X-Forwarded-For @xff
 * (all such headers joined with ",", or NULL): @peer itself unless it is one
 * of @proxies; else, right to left, the first X-Forwarded-For entry that is
 * not a trusted proxy (a malformed entry stops the walk at the last trusted
 * hop). Pure; thread-safe. */
void net_client_addr(const net_cidr *proxies, size_t nproxies, const char *peer, const char *xff,
                     char *out, size_t outsz);
struct sockaddr;
/* @sa as text ("" if not IPv4/IPv6); IPv4-mapped IPv6 shown as IPv4. */
void net_format_addr(const struct sockaddr *sa, char *out, size_t outsz);

#endif
