/*
 * A stand-alone driver for `tstore bench codec` (tools/bench_codec.c), used by `make bench` until
 * the tstore command is built with it.
 */
#include "config.h"

#include "tools/commands.h"

int main(int argc, char **argv)
{
	return cmd_bench_codec(argc - 1, argv + 1);
}
