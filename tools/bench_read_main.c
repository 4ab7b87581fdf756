/*
 * A stand-alone driver for `tstore bench read` (tools/bench_read.c), so the read benchmark runs
 * with `make bench-read` whether or not the tstore command is built.
 */
#include "tools/commands.h"

int main(int argc, char **argv)
{
	return cmd_bench_read(argc, argv);
}
