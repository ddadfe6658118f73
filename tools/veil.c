#include "veil/core.h"
int main(void) { return 0; }
