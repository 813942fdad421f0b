// memctl: admin CLI for memd (see memctl.h for commands and exit codes).
#include "memctl/memctl.h"

int main(int argc, char** argv) { return memd::RunMemctl(argc, argv); }
