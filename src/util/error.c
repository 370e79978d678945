/* SPDX-License-Identifier: MIT */
/* error.c — filling caller-owned th_error reports. */
#include <stdio.h>
#include <string.h>

#include "util/util.h"

int th_err(th_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return code;
}

int th_err_wrap(th_error *err, const char *fmt, ...)
{
	if (!err)
		return TH_EINVAL;
	char prefix[sizeof err->msg];
	char old[sizeof err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	old[sizeof old - 1] = '\0';
	snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
	return err->code;
}

const char *th_version(void)
{
	return TH_VERSION;
}
