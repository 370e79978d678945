/* SPDX-License-Identifier: MIT */
/*
 * child.h — for unit tests that fork: a child (a trello-mock, a helper
 * process) must not outlive the test binary. A failing assertion leaves its
 * test by longjmp, past the code that would stop the child, and a crash
 * skips everything; an orphan that inherited meson's stdout/stderr then holds
 * meson's pipe open until the test's timeout (20 minutes under valgrind).
 * Call child_dies_with_parent() first thing in the child: the kernel sends it
 * SIGKILL when the test binary (the forking thread) goes away.
 */
#ifndef TH_TEST_CHILD_H
#define TH_TEST_CHILD_H

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/* In the child, right after fork(); @parent is getpid() from before fork(). */
static inline void child_dies_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		_exit(126);
	if (getppid() != parent) /* the parent died before prctl took effect */
		_exit(126);
}

#endif
