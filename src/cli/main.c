#include <stdio.h>
#include "trellohook.h"
int main(void) { printf("trellohook %s\n", th_version()); return 0; }
