/* SPDX-License-Identifier: MIT */
/* Compiles include/trellohook.h alone, as a user's program would. */
#include <trellohook.h>

int main(void)
{
	th_error err = {0, {0}};
	return err.code;
}
