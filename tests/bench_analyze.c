/*
 * Benchmark of the statistics, the analyzer and the streaming encoder (make bench-analyze).
 * Prints figures measured in this run on one core (thread CPU time, so that other load on the
 * machine does not distort them): statistics throughput next to a memcpy
 * baseline, the analyzer's choice, error and time for LLM-like data at several bounds, and the
 * streaming encoder's throughput next to one-shot ts_codec_encode() of the same tensor.
 * Public API only. Usage: bench_analyze [rows cols]  (default 4096 4096).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/gen.h"
#include "tstore.h"

/* CPU time of this thread: the figures are per core and robust to other load on the machine */
static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int null_sink(void *ud, const void *codes, size_t codes_size, const void *scales,
		     size_t scales_size, uint64_t first_row, uint64_t row_count)
{
	(void)codes, (void)scales, (void)first_row, (void)row_count;
	*(size_t *)ud += codes_size + scales_size;
	return 0;
}

static const char *describe(const ts_codec_config *c, char *buf, size_t n)
{
	switch (c->codec) {
	case TS_CODEC_NVFP4:
		snprintf(buf, n, "nvfp4/%s", c->recipe == TS_RECIPE_BEST ? "best" : "nvidia");
		break;
	case TS_CODEC_INT8:
		snprintf(buf, n, "int8/%s/%d", c->symmetric ? "sym" : "asym", c->block_size);
		break;
	case TS_CODEC_RAW:
		snprintf(buf, n, "raw/%s", ts_dtype_name(c->raw_dtype));
		break;
	default:
		snprintf(buf, n, "%s", ts_codec_name(c->codec));
	}
	return buf;
}

int main(int argc, char **argv)
{
	uint64_t rows = argc > 2 ? strtoull(argv[1], NULL, 10) : 4096;
	uint64_t cols = argc > 2 ? strtoull(argv[2], NULL, 10) : 4096;
	uint64_t n = rows * cols;
	float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
	uint16_t *b = malloc(n * sizeof(uint16_t));
	char name[64];
	double t;

	if (!x || !y || !b || n == 0) {
		fprintf(stderr, "bench_analyze: cannot allocate %llu elements\n",
			(unsigned long long)n);
		return 1;
	}
	printf("tstore %s, kernels %s, tensor %llu x %llu (%.1f M elements), one core\n",
	       ts_version(), ts_kernel_name(), (unsigned long long)rows, (unsigned long long)cols,
	       (double)n / 1e6);

	gen_fill(x, rows, cols, GEN_NORMAL, 1);
	for (uint64_t i = 0; i < n; i++) {
		y[i] = x[i] * 1.001f;
		b[i] = ts_f32_to_bf16(x[i]);
	}

	/* statistics against a memcpy of the same bytes */
	t = now();
	memcpy(y, x, n * sizeof(float));
	double t_copy = now() - t;
	for (uint64_t i = 0; i < n; i++)
		y[i] = x[i] * 1.001f;
	ts_stats_acc acc;
	ts_stats_acc_init(&acc);
	t = now();
	ts_stats_acc_add_dist(&acc, x, TS_F32, n);
	double t_dist = now() - t;
	t = now();
	ts_stats_acc_add_dist(&acc, b, TS_BF16, n);
	double t_dist16 = now() - t;
	t = now();
	ts_stats_acc_add_error(&acc, x, TS_F32, y, n);
	double t_err = now() - t;
	printf("\nstatistics (M elements/s): memcpy F32 %.0f | distribution F32 %.0f, BF16 %.0f | "
	       "error F32 %.0f\n",
	       (double)n / t_copy / 1e6, (double)n / t_dist / 1e6, (double)n / t_dist16 / 1e6,
	       (double)n / t_err / 1e6);

	/* the analyzer */
	static const gen_kind kinds[] = {GEN_NORMAL, GEN_LAPLACE, GEN_STUDENT3, GEN_ROWSCALED};
	static const double bounds[] = {0, 1, 5, 10, 50};
	printf("\nanalyzer: %-9s %6s  %-16s %9s %9s %7s %8s %10s\n", "data", "bound", "choice",
	       "rel RMS %", "SQNR dB", "ratio", "seconds", "M elem/s");
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		gen_fill(x, rows, cols, kinds[k], 2 + k);
		for (size_t j = 0; j < sizeof(bounds) / sizeof(bounds[0]); j++) {
			ts_codec_config in = ts_codec_config_default(TS_CODEC_NVFP4), out;
			ts_compression_stats st;
			in.max_error_pct = bounds[j];
			t = now();
			int rc = ts_analyze(&out, &st, &in, x, TS_F32, rows, cols);
			t = now() - t;
			if (rc) {
				fprintf(stderr, "ts_analyze: %s\n", ts_error_last());
				return 1;
			}
			printf("          %-9s %6.1f  %-16s %9.3f %9.2f %7.2f %8.3f %10.1f\n",
			       gen_name(kinds[k]), bounds[j], describe(&out, name, sizeof(name)),
			       st.rel_rms_pct, st.sqnr_db, st.compression_ratio, t,
			       (double)n / t / 1e6);
		}
	}

	/* the streaming encoder against one-shot encoding, chunks of 1 MiB */
	gen_fill(x, rows, cols, GEN_NORMAL, 9);
	float amax = 0;
	for (uint64_t i = 0; i < n; i++)
		amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
	ts_codec_config cfgs[5];
	cfgs[0] = ts_codec_config_default(TS_CODEC_NVFP4);
	cfgs[1] = cfgs[0];
	cfgs[1].recipe = TS_RECIPE_BEST;
	cfgs[2] = ts_codec_config_default(TS_CODEC_MXFP4);
	cfgs[3] = ts_codec_config_default(TS_CODEC_INT8);
	cfgs[4] = ts_codec_config_default(TS_CODEC_FP8);
	printf("\nstream (M elements/s): %-12s %10s %10s %7s  (stream encodes, decodes and measures)\n",
	       "codec", "one-shot", "stream", "ratio");
	for (int c = 0; c < 5; c++) {
		size_t es = ts_codec_encoded_size(&cfgs[c], rows, cols), got = 0;
		void *enc = malloc(es);
		t = now();
		ts_codec_encode(&cfgs[c], amax, x, TS_F32, cols, rows, cols, enc, es);
		double t1 = now() - t;
		free(enc);
		ts_stream *s;
		if (ts_stream_new(&s, &cfgs[c], amax, TS_F32, rows, cols, null_sink, &got)) {
			fprintf(stderr, "ts_stream_new: %s\n", ts_error_last());
			return 1;
		}
		const size_t chunk = 1u << 18; /* elements: 1 MiB of F32 */
		t = now();
		for (uint64_t i = 0; i < n; i += chunk)
			ts_stream_process(s, x + i, (n - i < chunk ? n - i : chunk) * sizeof(float));
		ts_compression_stats st;
		int rc = ts_stream_finish(&st, s);
		double t2 = now() - t;
		ts_stream_free(s);
		if (rc || got != es) {
			fprintf(stderr, "stream: %s (%zu of %zu bytes)\n", ts_error_last(), got, es);
			return 1;
		}
		printf("                       %-12s %10.1f %10.1f %7.2f\n",
		       describe(&cfgs[c], name, sizeof(name)), (double)n / t1 / 1e6,
		       (double)n / t2 / 1e6, t1 / t2);
	}
	free(x);
	free(y);
	free(b);
	return 0;
}
