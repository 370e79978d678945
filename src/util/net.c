/* SPDX-License-Identifier: MIT */
/* net.c — listen addresses ("HOST:PORT", "[V6]:PORT"), parsed strictly; used
 * by the configuration and by the HTTP server, which therefore share one reading. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "util/util.h"

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
