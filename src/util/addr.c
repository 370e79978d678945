/* SPDX-License-Identifier: MIT */
/* addr.c — network addresses: listen addresses ("HOST:PORT", "[V6]:PORT",
 * declared in util.h), client addresses and trusted-proxy lists (addr.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "util/addr.h"
#include "util/util.h"

/* ---- listen addresses ------------------------------------------------------------- */

/* Parsed strictly; the configuration and the HTTP server share this one
 * reading. See util.h. */
int net_parse_listen(const char *listen, char *host, size_t hostsz, uint16_t *port)
{
	if (!listen || !*listen)
		return TH_EINVAL;
	const char *colon;
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');
		if (!end || end[1] != ':' || end == listen + 1)
			return TH_EINVAL;
		if ((size_t)(end - listen - 1) >= hostsz)
			return TH_EINVAL;
		memcpy(host, listen + 1, (size_t)(end - listen - 1));
		host[end - listen - 1] = '\0';
		colon = end + 1;
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return TH_EINVAL;
	} else {
		colon = strrchr(listen, ':');
		if (!colon || colon == listen || memchr(listen, ':', (size_t)(colon - listen)))
			return TH_EINVAL;
		if ((size_t)(colon - listen) >= hostsz)
			return TH_EINVAL;
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = '\0';
		for (const char *p = host; *p; p++)
			if (!(*p == '.' || *p == '-' || (*p >= '0' && *p <= '9') ||
			      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
				return TH_EINVAL;
	}
	int64_t p;
	if (num_parse_i64(colon + 1, 0, 65535, &p))
		return TH_EINVAL;
	*port = (uint16_t)p;
	return 0;
}

/* ---- client addresses and trusted proxies (addr.h) -------------------------------- */

/* Parse one address into 16 bytes (IPv4 as IPv4-mapped IPv6), so every
 * comparison works on one form. */
static bool addr_bytes(const char *s, unsigned char out[16], bool *v4)
{
	struct in_addr a4;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*v4 = true;
		return true;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		*v4 = memcmp(out, mapped, 12) == 0;
		return true;
	}
	return false;
}

static int bad_item(char *why, size_t whysz, const char *item, const char *what)
{
	if (why)
		str_printf(why, whysz, "'%s' %s", item, what);
	return TH_EINVAL;
}

int net_cidrs_parse(const char *list, net_cidr *out, size_t max, size_t *n, char *why, size_t whysz)
{
	*n = 0;
	const char *p = list ? list : "";
	while (*p) {
		size_t len = strcspn(p, ",");
		char item[64];
		size_t b = 0, e = len;
		while (b < e && (p[b] == ' ' || p[b] == '\t'))
			b++;
		while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\t'))
			e--;
		if (e - b >= sizeof item) {
			if (why)
				str_printf(why, whysz, "an entry is longer than %zu characters",
				           sizeof item - 1);
			return TH_EINVAL;
		}
		memcpy(item, p + b, e - b);
		item[e - b] = '\0';
		p += len + (p[len] == ',');
		if (!item[0])
			continue; /* "a, ,b" and a trailing comma are harmless */
		if (*n >= max) {
			if (why)
				str_printf(why, whysz, "more than %zu entries", max);
			return TH_EINVAL;
		}
		net_cidr c = {0};
		char *slash = strchr(item, '/');
		if (slash)
			*slash = '\0';
		bool v4;
		if (!addr_bytes(item, c.addr, &v4))
			return bad_item(why, whysz, item, "is not an IPv4 or IPv6 address");
		unsigned maxbits = v4 ? 32 : 128;
		c.bits = 128;
		if (slash) {
			int64_t bits;
			if (num_parse_i64(slash + 1, 0, maxbits, &bits))
				return bad_item(why, whysz, slash + 1,
				                v4 ? "is not a prefix length from 0 to 32"
				                   : "is not a prefix length from 0 to 128");
			c.bits = (unsigned)bits + (v4 ? 96 : 0);
		}
		out[(*n)++] = c;
	}
	return 0;
}

static bool prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	if (memcmp(a, b, whole))
		return false;
	if (!rest)
		return true;
	unsigned char m = (unsigned char)(0xff << (8 - rest));
	return (a[whole] & m) == (b[whole] & m);
}

bool net_cidrs_match(const net_cidr *c, size_t n, const char *addr)
{
	unsigned char a[16];
	bool v4;
	if (!n || !addr_bytes(addr, a, &v4))
		return false;
	for (size_t i = 0; i < n; i++)
		if (prefix_eq(a, c[i].addr, c[i].bits))
			return true;
	return false;
}

/* Copy the X-Forwarded-For entry ending before @end (exclusive) into @out,
 * trimmed; return where it starts. */
static const char *prev_entry(const char *start, const char *end, char *out, size_t outsz)
{
	const char *b = end;
	while (b > start && b[-1] != ',')
		b--;
	const char *s = b, *e = end;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	size_t len = (size_t)(e - s);
	if (len >= outsz)
		len = 0; /* too long to be an address: reads as malformed */
	memcpy(out, s, len);
	out[len] = '\0';
	return b;
}

void net_client_addr(const net_cidr *proxies, size_t nproxies, const char *peer, const char *xff,
                     char *out, size_t outsz)
{
	str_copy(out, outsz, peer ? peer : "");
	if (!xff || !*xff || !net_cidrs_match(proxies, nproxies, peer))
		return;
	/* Right to left: each hop appended the address it saw. The first one that
	 * is not one of our proxies is the client; a malformed entry ends the walk
	 * (whatever lies left of it was written by the client and proves nothing),
	 * leaving the last trusted hop as the address. */
	const char *end = xff + strlen(xff);
	while (end > xff) {
		char item[64];
		const char *b = prev_entry(xff, end, item, sizeof item);
		unsigned char bytes[16];
		bool v4;
		if (!addr_bytes(item, bytes, &v4))
			return;
		str_copy(out, outsz, item);
		if (!net_cidrs_match(proxies, nproxies, item))
			return;
		end = b > xff ? b - 1 : xff;
	}
}

void net_format_addr(const struct sockaddr *sa, char *out, size_t outsz)
{
	out[0] = '\0';
	if (!sa)
		return;
	char tmp[INET6_ADDRSTRLEN];
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		if (inet_ntop(AF_INET, &s4->sin_addr, tmp, sizeof tmp))
			str_copy(out, outsz, tmp);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		/* a v4 client of a [::] listener: show it as plain IPv4 */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			if (inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, tmp, sizeof tmp))
				str_copy(out, outsz, tmp);
		} else if (inet_ntop(AF_INET6, &s6->sin6_addr, tmp, sizeof tmp)) {
			str_copy(out, outsz, tmp);
		}
	}
}
