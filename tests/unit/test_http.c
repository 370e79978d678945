/* SPDX-License-Identifier: MIT */
/* Unit tests of the http layer's pure parts: trusted-proxy lists and the
 * client address behind X-Forwarded-For (hostile, malformed, oversized). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "util/addr.h"
#include "util/util.h"

static void test_cidrs_parse(void **state)
{
	net_cidr c[NET_MAX_PROXIES];
	size_t n = 99;
	char why[128];
	assert_int_equal(net_cidrs_parse(NULL, c, 4, &n, why, sizeof why), 0);
	assert_int_equal(n, 0);
	assert_int_equal(net_cidrs_parse("", c, 4, &n, why, sizeof why), 0);
	assert_int_equal(n, 0);
	assert_int_equal(
	    net_cidrs_parse(" 127.0.0.1, 10.0.0.0/8 ,,::1,fd00::/8,", c, 8, &n, why, sizeof why),
	    0);
	assert_int_equal(n, 4);
	assert_int_equal(c[0].bits, 128);
	assert_int_equal(c[1].bits, 96 + 8);
	assert_int_equal(c[3].bits, 8);

	const char *bad[] = {"10.0.0.0/33",  "::/129", "10.0.0.0/",  "10.0.0.0/-1", "10.0.0.0/8x",
	                     "localhost",    "1.2.3",  "1.2.3.4.5",  "1.2.3.4:80",  "[::1]",
	                     "10.0.0.1/8/8", "\x01",   "0x7f.0.0.1", "1.2.3.256",   "\xff\xfe"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		assert_int_equal(net_cidrs_parse(bad[i], c, 8, &n, why, sizeof why), TH_EINVAL);
		assert_true(why[0] != '\0');
	}
	/* too many entries, an overlong one; NULL @why is fine */
	assert_int_equal(net_cidrs_parse("1.1.1.1,2.2.2.2,3.3.3.3", c, 2, &n, why, sizeof why),
	                 TH_EINVAL);
	assert_non_null(strstr(why, "more than 2"));
	char longer[200];
	memset(longer, '1', sizeof longer - 1);
	longer[sizeof longer - 1] = '\0';
	assert_int_equal(net_cidrs_parse(longer, c, 8, &n, NULL, 0), TH_EINVAL);
}

static void test_cidrs_match(void **state)
{
	net_cidr c[8];
	size_t n;
	assert_int_equal(
	    net_cidrs_parse("10.1.2.0/23,::1,2001:db8::/33,192.168.0.7", c, 8, &n, NULL, 0), 0);
	assert_true(net_cidrs_match(c, n, "10.1.2.9"));
	assert_true(net_cidrs_match(c, n, "10.1.3.255"));
	assert_false(net_cidrs_match(c, n, "10.1.4.0"));
	assert_true(net_cidrs_match(c, n, "::1"));
	assert_true(net_cidrs_match(c, n, "::ffff:192.168.0.7")); /* v4-mapped is the v4 address */
	assert_true(net_cidrs_match(c, n, "2001:db8:7fff::1"));
	assert_false(net_cidrs_match(c, n, "2001:db8:8000::1"));
	assert_false(net_cidrs_match(c, n, "192.168.0.8"));
	assert_false(net_cidrs_match(c, n, ""));
	assert_false(net_cidrs_match(c, n, "garbage"));
	assert_false(net_cidrs_match(c, 0, "10.1.2.9"));
	/* /0 trusts everything of its family only */
	assert_int_equal(net_cidrs_parse("0.0.0.0/0", c, 8, &n, NULL, 0), 0);
	assert_true(net_cidrs_match(c, n, "203.0.113.9"));
	assert_false(net_cidrs_match(c, n, "2001:db8::1"));
}

static void test_client_addr(void **state)
{
	net_cidr c[8];
	size_t n;
	char out[NET_ADDR_LEN];
	assert_int_equal(net_cidrs_parse("127.0.0.1,10.0.0.0/8", c, 8, &n, NULL, 0), 0);

	/* an untrusted peer: X-Forwarded-For is the client's own claim, ignored */
	net_client_addr(c, n, "203.0.113.5", "198.51.100.1", out, sizeof out);
	assert_string_equal(out, "203.0.113.5");
	/* no proxies configured: the same */
	net_client_addr(c, 0, "127.0.0.1", "198.51.100.1", out, sizeof out);
	assert_string_equal(out, "127.0.0.1");
	/* a trusted peer: the nearest untrusted hop, whatever the client wrote left of it */
	net_client_addr(c, n, "127.0.0.1", "1.1.1.1, 198.51.100.1", out, sizeof out);
	assert_string_equal(out, "198.51.100.1");
	net_client_addr(c, n, "127.0.0.1", "6.6.6.6,198.51.100.1 , 10.0.0.3,10.2.2.2", out,
	                sizeof out);
	assert_string_equal(out, "198.51.100.1");
	net_client_addr(c, n, "127.0.0.1", "2001:db8::7", out, sizeof out);
	assert_string_equal(out, "2001:db8::7");
	/* no header, an empty one: the peer */
	net_client_addr(c, n, "127.0.0.1", NULL, out, sizeof out);
	assert_string_equal(out, "127.0.0.1");
	net_client_addr(c, n, "127.0.0.1", "", out, sizeof out);
	assert_string_equal(out, "127.0.0.1");
	/* every hop trusted: the leftmost */
	net_client_addr(c, n, "127.0.0.1", "10.0.0.9,10.0.0.8", out, sizeof out);
	assert_string_equal(out, "10.0.0.9");
	/* malformed entries stop the walk at the last trusted hop */
	const char *bad[] = {"garbage",
	                     "1.1.1.1, unknown",
	                     "1.1.1.1,",
	                     "1.2.3.4:5678",
	                     "\x01\x02",
	                     "1.1.1.1,\xff\xfe",
	                     "1.1.1.1, "
	                     "1111111111111111111111111111111111111111111111111111111111111111111"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		net_client_addr(c, n, "127.0.0.1", bad[i], out, sizeof out);
		assert_string_equal(out, "127.0.0.1");
	}
	net_client_addr(c, n, "127.0.0.1", "9.9.9.9,bogus,10.0.0.4", out, sizeof out);
	assert_string_equal(out, "10.0.0.4");
	/* a small output buffer truncates, never overflows */
	char small[8];
	net_client_addr(c, n, "127.0.0.1", "198.51.100.123", small, sizeof small);
	assert_true(strlen(small) < sizeof small);
}

static void test_format_addr(void **state)
{
	char out[NET_ADDR_LEN];
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	inet_pton(AF_INET, "192.0.2.1", &s4.sin_addr);
	net_format_addr((struct sockaddr *)&s4, out, sizeof out);
	assert_string_equal(out, "192.0.2.1");
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	inet_pton(AF_INET6, "::ffff:192.0.2.9", &s6.sin6_addr);
	net_format_addr((struct sockaddr *)&s6, out, sizeof out);
	assert_string_equal(out, "192.0.2.9");
	inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
	net_format_addr((struct sockaddr *)&s6, out, sizeof out);
	assert_string_equal(out, "2001:db8::1");
	struct sockaddr other = {.sa_family = AF_UNIX};
	net_format_addr(&other, out, sizeof out);
	assert_string_equal(out, "");
	net_format_addr(NULL, out, sizeof out);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidrs_parse),
	    cmocka_unit_test(test_cidrs_match),
	    cmocka_unit_test(test_client_addr),
	    cmocka_unit_test(test_format_addr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
